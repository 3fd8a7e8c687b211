"""A classification checkpoint: its labels, its head converted to an MLPHead, features and logits in
one forward pass, and the check that features -> head reproduce the checkpoint's logits."""

from __future__ import annotations

import contextlib
import json
import pickle
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from harness.classifiers.layouts import LAYOUTS, HeadLayout, supported
from harness.errors import HarnessError
from harness.heads.mlp import MLPHead

CLASSIFIER_SUFFIXES = ("ForSequenceClassification", "ForImageClassification")
LOGITS_TOL = 1e-4  # max abs difference, float32


@dataclass(frozen=True)
class CheckpointInfo:
    card_id: str
    architecture: str
    labels: tuple[str, ...]  # id2label, in output order
    layout: HeadLayout

    def describe(self) -> dict:
        return {"architecture": self.architecture, "head_layers": list(self.layout.layers),
                "activation": self.layout.activation, "labels": list(self.labels), "attacked": self.layout.about}


def _malformed(card_id: str, what: str):
    return HarnessError("id", card_id, f"has a malformed config.json ({what}); save the checkpoint with "
                        "save_pretrained, or fix config.json by hand")


def read_checkpoint(card_id: str, path: Path) -> CheckpointInfo:
    """From config.json alone (no weights): a supported classifier with >= 2 labels, or one line saying why not.
    Absent label fields take transformers' defaults (PretrainedConfig: num_labels 2, labels LABEL_k): transformers
    5 leaves them out of config.json when they are the defaults."""
    try:
        cfg = json.loads((Path(path) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise HarnessError("id", card_id, f"has no readable config.json ({exc})") from None
    if not isinstance(cfg, dict):
        raise _malformed(card_id, f"a JSON {type(cfg).__name__}, not an object")
    archs = cfg.get("architectures") or []
    if not isinstance(archs, list) or not all(isinstance(a, str) for a in archs):
        raise _malformed(card_id, f"architectures is {archs!r}, not a list of class names")
    arch = archs[0] if archs else f"{cfg.get('model_type', 'unknown')} (no architectures entry)"
    if not arch.endswith(CLASSIFIER_SUFFIXES):
        raise HarnessError(
            "id", card_id, f"is not a classifier checkpoint (its config names {arch}); point kind: classifier at a "
            "*ForSequenceClassification or *ForImageClassification checkpoint, or use kind: backbone",
        )
    if arch not in LAYOUTS:
        raise HarnessError("id", card_id, f"has a {arch} head the attack cannot use; supported: {supported()}")
    raw = cfg.get("id2label") or {}
    try:
        if not isinstance(raw, dict):
            raise ValueError
        id2label = {int(k): str(v) for k, v in raw.items()}
    except (TypeError, ValueError):
        raise _malformed(card_id, f"id2label {str(raw)[:80]} does not map output indices to label names, "
                         "e.g. {\"0\": \"negative\", \"1\": \"positive\"}") from None
    num = cfg.get("num_labels")
    if num is not None and (isinstance(num, bool) or not isinstance(num, int)):
        raise _malformed(card_id, f"num_labels is {num!r}, not an integer")
    n = len(id2label) or (2 if num is None else num)
    if id2label and sorted(id2label) != list(range(n)):
        raise _malformed(card_id, f"id2label's outputs are {sorted(id2label)}, not 0..{n - 1}")
    if cfg.get("problem_type") in ("regression", "multi_label_classification") or n < 2:
        raise HarnessError(
            "id", card_id, f"is a {cfg.get('problem_type') or 'one-output'} checkpoint ({n} labels); "
            "single-label classifiers with >= 2 labels are supported",
        )
    labels = tuple(id2label.get(i, f"LABEL_{i}") for i in range(n))
    return CheckpointInfo(card_id, arch, labels, LAYOUTS[arch])


def is_integer_class(c) -> bool:
    """A class given as a number (or digits): a label value of the data, matched to outputs once the data is read."""
    return isinstance(c, int) or (isinstance(c, str) and c.isdigit())


def check_classes(info: CheckpointInfo, classes: list, data_names: list[str] | None = None) -> None:
    """The task's classes are the checkpoint's labels, in its output order: the class listed i-th names output i
    (compared without case). Generic LABEL_k labels accept any classes, taken in the order given.

    An integer class is a label value of the data (harness/data/split.py), never an output index. It names
    output i when the data's name for it (`data_names`, where the data has been read) is the checkpoint's label,
    or when the checkpoint's label is that integer as text (what `recon-harness finetune` writes for data whose
    labels are integers). Any other integer cannot be matched to an output, and is refused rather than guessed."""
    if len(classes) != len(info.labels):
        raise HarnessError(
            "classes", list(classes), f"{info.card_id} has {len(info.labels)} labels {list(info.labels)}; "
            "list them all, in the checkpoint's output order",
        )
    if all(re.fullmatch(r"LABEL_\d+", lab) for lab in info.labels):
        return
    for i, (c, lab) in enumerate(zip(classes, info.labels)):
        name = str(data_names[i]) if data_names is not None else str(c)
        if name.lower() == lab.lower():
            continue
        if data_names is not None and name != str(c):
            why = f"label value {c} of the data is {name!r}, but output {i} of {info.card_id} is {lab!r}"
        elif is_integer_class(c):
            why = f"an integer class is a label value of the data, not an output index; output {i} of {info.card_id} is {lab!r}"
        else:
            why = f"output {i} of {info.card_id} is {lab!r}"
        raise HarnessError("classes", c, f"{why}; list the checkpoint's labels by name in its output order: {list(info.labels)}")


def convert_head(model: nn.Module, info: CheckpointInfo) -> MLPHead:
    """The layout's linear layers copied into an MLPHead (float32), biases where the checkpoint has them."""
    mods = []
    for name in info.layout.layers:
        try:
            mod = model.get_submodule(name)
        except AttributeError:
            mod = None
        if not isinstance(mod, nn.Linear):
            raise HarnessError("id", info.card_id, f"{info.architecture} has no linear layer {name!r} where its head should be")
        mods.append(mod)
    biased = [m.bias is not None for m in mods]
    bias = "all" if all(biased) else "none" if not any(biased) else "first" if biased[0] and not any(biased[1:]) else None
    if bias is None:
        raise HarnessError("id", info.card_id, f"head biases on layers {biased}: supported are all, none or the first only")
    dims = [mods[0].in_features] + [m.out_features for m in mods]
    head = MLPHead(dims, bias=bias, activation=info.layout.activation)
    with torch.no_grad():
        for dst, src in zip(head.layers, mods):
            dst.weight.copy_(src.weight.float())
            if src.bias is not None:
                dst.bias.copy_(src.bias.float())
    return head.eval()


@dataclass
class ClassifierHead:
    """A loaded checkpoint's head and how to read its input off the checkpoint's own forward pass."""

    info: CheckpointInfo
    head: MLPHead

    def forward(self, model: nn.Module, inputs: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """(head inputs, logits) of one batch, float32: a hook on the head's first layer takes what it
        receives. Differentiable unless called under no_grad / inference mode."""
        seen: list[torch.Tensor] = []
        hook = model.get_submodule(self.info.layout.layers[0]).register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
        try:
            logits = model(**inputs).logits
        finally:
            hook.remove()
        if len(seen) != 1 or seen[0].dim() != 2:
            raise HarnessError("id", self.info.card_id, f"{self.info.architecture}'s head did not see one (batch, dim) input")
        return seen[0].float(), logits.float()

    @torch.inference_mode()
    def check(self, model: nn.Module, inputs: dict[str, Any], n: int) -> float:
        """Max abs difference between head(features) and the checkpoint's logits; one line if above tolerance."""
        feats, logits = self.forward(model, inputs)
        diff = float((self.head(feats.cpu()) - logits.cpu()).abs().max())
        if not diff <= LOGITS_TOL:
            raise HarnessError(
                "id", self.info.card_id, f"feature extractor + converted head do not reproduce the checkpoint's logits "
                f"(max abs difference {diff:.2e} > {LOGITS_TOL:g} on {n} task inputs); {self.info.architecture} may "
                f"differ from the layout the harness knows ({self.info.layout.about})",
            )
        return diff


@contextlib.contextmanager
def quiet_transformers():
    """No transformers log lines (its multi-line LOAD REPORT of missing keys, deprecation notes) or Python
    warnings while a checkpoint loads: what matters is refused afterwards in one line of ours."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hf_logging.set_verbosity_error()
            yield
    finally:
        hf_logging.set_verbosity(level)


WEIGHT_ERRORS = (OSError, ValueError, RuntimeError, pickle.UnpicklingError)


def weights_error(exc: BaseException) -> str:
    """One line for a checkpoint's weights that would not load (`WEIGHT_ERRORS`)."""
    if isinstance(exc, pickle.UnpicklingError):  # torch's weights_only refused it: the pickle holds more than tensors
        return ("has pickled weights that hold more than tensors, which torch refuses to load (weights_only, as they "
                "could run code); use safetensors weights (model.save_pretrained(dir) saves them)")
    return f"weights could not be loaded ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"


def load_classifier(auto, path: str, info: CheckpointInfo, kwargs: dict) -> tuple[nn.Module, ClassifierHead]:
    """The checkpoint through its Auto class in float32, refusing one that lacks any weight the architecture needs
    (the head's or the feature extractor's: from_pretrained would fill them with random values)."""
    try:
        with quiet_transformers():
            model, loading = auto.from_pretrained(path, output_loading_info=True, **{**kwargs, "dtype": torch.float32})
    except WEIGHT_ERRORS as exc:
        raise HarnessError("id", info.card_id, weights_error(exc)) from None
    missing = sorted(loading.get("missing_keys", []))
    head = [k for k in missing if any(k.startswith(layer + ".") for layer in info.layout.layers)]
    if head:
        raise HarnessError("id", info.card_id, f"has no trained head weights ({head[0]} is missing from the checkpoint)")
    if missing:  # from_pretrained fills them with random values: the features would not be the checkpoint's
        raise HarnessError(
            "id", info.card_id, f"lacks {len(missing)} weight{'s' if len(missing) > 1 else ''} its {info.architecture} "
            f"needs ({missing[0]}{' ...' if len(missing) > 1 else ''}), which would be filled with random values; give "
            "the whole fine-tuned model as saved by save_pretrained",
        )
    model.eval()
    return model, ClassifierHead(info, convert_head(model, info))
