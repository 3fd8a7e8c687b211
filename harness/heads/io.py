"""Save and load victim heads as safetensors, with their recipe in the file's metadata."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from harness.errors import HarnessError
from harness.heads.mlp import MLPHead

META_KEY = "recon_harness_head"


MEAN_KEY = "member_mean"


def save_head(head: MLPHead, path: str | Path, meta: dict, mean: torch.Tensor | None = None) -> Path:
    """Atomic write: the file appears whole or not at all; `mean` is the subtracted member mean."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = {"dims": head.dims, "bias": head.bias_mode, **meta}
    tensors = {k: v.detach().contiguous().cpu() for k, v in head.state_dict().items()}
    if mean is not None:
        tensors[MEAN_KEY] = mean.detach().contiguous().cpu()
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    save_file(tensors, str(tmp), metadata={META_KEY: json.dumps(header, default=str)})
    os.replace(tmp, path)
    return path


def load_head(path: str | Path) -> tuple[MLPHead, dict, torch.Tensor | None]:
    """Load a head written by `save_head`, or a plain safetensors MLP (layers.K.weight/bias)."""
    path = Path(path)
    if not path.is_file():
        raise HarnessError("head", str(path), "no such file; pass a .safetensors head file")
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {}).get(META_KEY, "{}"))
        tensors = load_file(str(path))
    except Exception as exc:  # safetensors raises several types for a bad file
        raise HarnessError("head", str(path), f"not a readable safetensors file ({exc})") from exc
    mean = tensors.pop(MEAN_KEY, None)
    weights = sorted(
        (k for k in tensors if k.startswith("layers.") and k.endswith(".weight")),
        key=lambda k: int(k.split(".")[1]),
    )
    if not weights:
        raise HarnessError("head", str(path), "holds no 'layers.K.weight' tensors; save heads with MLPHead")
    dims = [tensors[weights[0]].shape[1]] + [tensors[k].shape[0] for k in weights]
    biased = [k.replace(".weight", ".bias") in tensors for k in weights]
    bias = "all" if all(biased) else ("first" if biased[0] and not any(biased[1:]) else "none")
    if meta.get("dims") and list(meta["dims"]) != dims:
        raise HarnessError("head", str(path), f"metadata dims {meta['dims']} disagree with tensors {dims}")
    head = MLPHead(dims, bias=bias).to(tensors[weights[0]].dtype)
    head.load_state_dict(tensors)
    return head, meta, mean
