"""Save and load victim heads as safetensors, with their recipe in the file's metadata."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from harness.errors import HarnessError
from harness.heads.mlp import ACTIVATIONS, MLPHead
from harness.victims.frame import MEAN_KEY, SCALE_KEY, Frame

META_KEY = "recon_harness_head"


def save_head(head: MLPHead, path: str | Path, meta: dict, mean: torch.Tensor | None = None,
              frame: Frame | None = None) -> Path:
    """Atomic write: the file appears whole or not at all. `frame` is the input transform published
    with the head (its mean and any scale); `mean` alone is a frame that only centres."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if frame is None and mean is not None:
        frame = Frame(mean)
    header = {"dims": head.dims, "bias": head.bias_mode, "activation": head.activation, **({"frame": frame.meta()} if frame else {}),
              **meta}  # a caller's own "frame" entry wins (a converter that does not know whether inputs were normalised)
    tensors = {k: v.detach().contiguous().cpu() for k, v in head.state_dict().items()}
    if frame is not None:
        tensors.update(frame.tensors())
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    save_file(tensors, str(tmp), metadata={META_KEY: json.dumps(header, default=str)})
    os.replace(tmp, path)
    return path


def load_head(path: str | Path, field: str = "head") -> tuple[MLPHead, dict, Frame | None]:
    """Load a head written by `save_head` (with its frame), or a plain safetensors MLP (layers.K.weight/bias).
    `field`: what a refusal names (the CLI's `--head`; a saved victim's file in a results directory is `head`)."""
    path = Path(path)
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "no such file"
        raise HarnessError(field, str(path), f"{what}; pass a .safetensors head file")
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {}).get(META_KEY, "{}"))
        tensors = load_file(str(path))
    except Exception as exc:  # safetensors raises several types for a bad file
        raise HarnessError(field, str(path), f"not a readable safetensors file ({exc}); write the head with "
                           "harness.heads.convert (from a torch or scikit-learn head: docs/given-heads.md)") from exc
    if not isinstance(meta, dict):
        raise HarnessError(field, str(path), f"its {META_KEY} metadata is a JSON {type(meta).__name__}, not an object; "
                           "save heads with save_head, or drop that metadata")
    mean = tensors.pop(MEAN_KEY, None)
    scale = tensors.pop(SCALE_KEY, None)
    _check_tensors(path, tensors, mean, field)
    # every head is loaded in float32 (half precision widened exactly, scikit-learn's float64 rounded): the attack's dtype
    tensors = {k: v.float() for k, v in tensors.items()}
    if scale is not None and (mean is None or tuple(scale.shape) != tuple(mean.shape) or not scale.is_floating_point()):
        raise HarnessError(field, str(path), f"{SCALE_KEY} needs a {MEAN_KEY} of the same shape, floating point")
    if scale is not None and (bad := int((~(torch.isfinite(scale) & (scale > 0))).sum())):
        raise HarnessError(field, str(path), f"{SCALE_KEY} holds {bad} values that are not finite and positive (a scale divides the "
                           "inputs: a float16 save rounds a standard scaler's tiny scales to 0); save it in float32, with 1 "
                           "where a dimension is constant, as scikit-learn's StandardScaler does")
    weights = sorted(
        (k for k in tensors if k.endswith(".weight")),
        key=lambda k: int(k.split(".")[1]),
    )
    dims = [tensors[weights[0]].shape[1]] + [tensors[k].shape[0] for k in weights]
    biased = [k.replace(".weight", ".bias") in tensors for k in weights]
    if all(biased):
        bias = "all"
    elif biased[0] and not any(biased[1:]):
        bias = "first"
    elif not any(biased):
        bias = "none"
    else:
        raise HarnessError(
            field, str(path), f"has biases on layers {[i for i, b in enumerate(biased) if b]} only; "
            "a head has a bias on every layer, on the first only, or on none",
        )
    if meta.get("dims") and list(meta["dims"]) != dims:
        raise HarnessError(field, str(path), f"metadata dims {meta['dims']} disagree with tensors {dims}")
    if mean is not None and tuple(mean.shape) != (dims[0],):
        raise HarnessError(field, str(path), f"member_mean has shape {tuple(mean.shape)}, the first layer takes {dims[0]}-d inputs")
    activation = meta.get("activation", "relu")
    if activation not in ACTIVATIONS:
        raise HarnessError(field, str(path), f"metadata activation {activation!r} is not one of {', '.join(ACTIVATIONS)}")
    head = MLPHead(dims, bias=bias, activation=activation).to(tensors[weights[0]].dtype)
    try:
        head.load_state_dict(tensors)
    except (RuntimeError, ValueError) as exc:  # any mismatch the checks above did not name
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise HarnessError(field, str(path), f"does not load as an MLP head ({first}); save heads with MLPHead") from None
    frame = None if mean is None else Frame.from_tensors({MEAN_KEY: mean, **({SCALE_KEY: scale} if scale is not None else {})},
                                                         meta.get("frame"), dims[0])
    if frame is not None:
        from harness.victims.transforms import TRANSFORMS

        if frame.transform not in TRANSFORMS:  # it names the inputs' frame: an unknown one would be recorded as a recipe
            raise HarnessError(field, str(path), f"its saved frame names transform {frame.transform!r}, not one of "
                               f"{', '.join(TRANSFORMS)}; save heads with save_head")
        if (frame.transform == "standardize") != (frame.scale is not None):  # what the file says must be what it holds
            held = f"saves a {SCALE_KEY}" if frame.scale is not None else f"saves no {SCALE_KEY}"
            raise HarnessError(field, str(path), f"its saved frame names transform {frame.transform!r} but {held}; a "
                               f"standardised head saves {MEAN_KEY} and {SCALE_KEY}, any other only {MEAN_KEY}")
    return head, meta, frame


_KEY = re.compile(r"^layers\.(\d+)\.(weight|bias)$")


def _check_tensors(path: Path, tensors: dict[str, torch.Tensor], mean: torch.Tensor | None, field: str) -> None:
    """Every tensor named layers.K.weight/bias, floating point, the layers numbered 0..L-1 and chaining."""
    extra = sorted(k for k in tensors if not _KEY.match(k))
    if extra:
        shown = ", ".join(extra[:4]) + (f" (+{len(extra) - 4} more)" if len(extra) > 4 else "")
        raise HarnessError(
            field, str(path), f"holds tensors that are not head layers: {shown}; a head holds only "
            f"layers.K.weight, layers.K.bias, {MEAN_KEY} and {SCALE_KEY} (harness.heads.convert writes a torch or "
            "scikit-learn head so: docs/given-heads.md)",
        )
    for k, t in [*tensors.items(), *([(MEAN_KEY, mean)] if mean is not None else [])]:
        if not t.is_floating_point():
            raise HarnessError(field, str(path), f"tensor {k} has dtype {t.dtype}; a head's tensors must be floating point (float32)")
        if bad := int((~torch.isfinite(t)).sum()):
            raise HarnessError(field, str(path), f"tensor {k} holds {bad} non-finite values (NaN or inf); a head's weights must "
                               "be finite: check the training run that wrote it")
    idx = sorted(int(_KEY.match(k).group(1)) for k in tensors if k.endswith(".weight"))
    if not idx:
        raise HarnessError(field, str(path), "holds no 'layers.K.weight' tensors; save heads with MLPHead")
    if idx != list(range(len(idx))):
        raise HarnessError(field, str(path), f"has weights for layers {idx}; they must be numbered 0..{len(idx) - 1}")
    orphan = sorted(k for k in tensors if k.endswith(".bias") and k.replace(".bias", ".weight") not in tensors)
    if orphan:
        raise HarnessError(field, str(path), f"has a bias without a weight: {orphan[0]}")
    prev = None
    for i in idx:
        w = tensors[f"layers.{i}.weight"]
        if w.dim() != 2 or min(w.shape) < 1:
            raise HarnessError(field, str(path), f"layers.{i}.weight has shape {tuple(w.shape)}; layer weights are non-empty 2-d (out, in)")
        if prev is not None and w.shape[1] != prev:
            raise HarnessError(
                field, str(path), f"layers do not chain: layers.{i - 1} gives {prev} outputs but layers.{i}.weight takes {w.shape[1]} inputs",
            )
        b = tensors.get(f"layers.{i}.bias")
        if b is not None and tuple(b.shape) != (w.shape[0],):
            raise HarnessError(field, str(path), f"layers.{i}.bias has shape {tuple(b.shape)}, expected ({w.shape[0]},)")
        prev = w.shape[0]
