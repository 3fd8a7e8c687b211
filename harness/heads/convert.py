"""Write a head trained elsewhere as the file `recon-harness run --head` reads: a PyTorch stack of `nn.Linear` layers
or a scikit-learn `MLPClassifier` (alone or behind a `StandardScaler` / `Normalizer` in a `Pipeline`), with the frame
its inputs were in (docs/given-heads.md). Run it where the head was trained: nothing here unpickles a file."""

from __future__ import annotations

from pathlib import Path

import torch

from harness.errors import HarnessError
from harness.heads.io import save_head
from harness.heads.mlp import ACTIVATIONS, MLPHead
from harness.victims.frame import Frame

TORCH_ACTIVATIONS = {"ReLU": "relu", "Tanh": "tanh"}  # scikit-learn names its activations as MLPHead does


def frame_of(dim: int, mean=None, scale=None, l2: bool | None = None) -> Frame:
    """The frame a head's inputs were in: the embeddings (L2-normalised first, `l2`), minus `mean`, divided by `scale`
    (a StandardScaler's `mean_` and `scale_`); no mean: the embeddings as they are."""
    m = torch.zeros(dim) if mean is None else torch.as_tensor(mean, dtype=torch.float32).flatten()
    s = None if scale is None else torch.as_tensor(scale, dtype=torch.float32).flatten()
    label = "standardize" if s is not None else "raw" if mean is None else "l2" if l2 else "none"
    return Frame(m, s, bool(l2), label)


def _save(head: MLPHead, path, meta: dict, frame: Frame, l2: bool | None) -> Path:
    """`l2` None: the file does not say whether the inputs were L2-normalised, and the card's normalisation decides."""
    stated = frame.meta() if l2 is not None else {"transform": frame.transform}
    return save_head(head, path, {**meta, "frame": stated}, frame=frame)


def head_from_layers(weights: list[torch.Tensor], biases: list[torch.Tensor | None], activation: str) -> MLPHead:
    """An MLPHead holding these (out, in) weights and biases, in order."""
    if activation not in ACTIVATIONS:
        raise HarnessError("activation", activation, f"a head's hidden units use one of {', '.join(ACTIVATIONS)}")
    has = [b is not None for b in biases]
    mode = "all" if all(has) else "none" if not any(has) else "first" if has[0] and not any(has[1:]) else None
    if mode is None:
        raise HarnessError("biases", has, "a head has a bias on every layer, on the first only, or on none")
    head = MLPHead([weights[0].shape[1]] + [w.shape[0] for w in weights], bias=mode, activation=activation)
    with torch.no_grad():
        for layer, w, b in zip(head.layers, weights, biases):
            layer.weight.copy_(torch.as_tensor(w, dtype=torch.float32))
            if b is not None:
                layer.bias.copy_(torch.as_tensor(b, dtype=torch.float32).flatten())
    return head


def from_torch(model: torch.nn.Module, path: str | Path, mean=None, scale=None, l2: bool | None = None) -> Path:
    """Save `model` (its `nn.Linear` layers in order, ReLU or Tanh between them) with the frame of its inputs. One
    output: a logit, positive for the second of the task's `classes:`; k outputs: one per class, in that order.
    `l2`: whether its inputs were L2-normalised embeddings (None: as the card gives them)."""
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    kinds = {type(m).__name__ for m in model.modules() if not list(m.children()) and not isinstance(m, torch.nn.Linear)}
    unknown = kinds - set(TORCH_ACTIVATIONS) - {"Dropout", "Identity"}
    if not linears or unknown or len({TORCH_ACTIVATIONS[k] for k in kinds if k in TORCH_ACTIVATIONS}) > 1:
        raise HarnessError("model", type(model).__name__, f"holds {sorted(kinds) or 'no layers between its Linear ones'}; "
                           "a head is Linear layers with one of ReLU or Tanh between them (Dropout is left out)")
    activation = next((TORCH_ACTIVATIONS[k] for k in kinds if k in TORCH_ACTIVATIONS), "relu")
    head = head_from_layers([m.weight.detach() for m in linears],
                            [None if m.bias is None else m.bias.detach() for m in linears], activation)
    return _save(head, path, {"source": "torch"}, frame_of(head.in_dim, mean, scale, l2), l2)


def from_sklearn(model, path: str | Path, scaler=None, l2: bool | None = None) -> Path:
    """Save a fitted scikit-learn `MLPClassifier` (or a `Pipeline` of `StandardScaler` / `Normalizer` steps before one)
    with the frame of its inputs. Binary: one logit, positive for `model.classes_[1]`; else one output per class in
    the order of `classes_`: the task's `classes:` must name them in that order. `l2`: as `from_torch` (an l2
    `Normalizer` step says True)."""
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import Normalizer, StandardScaler

    steps = [s for _, s in model.steps] if isinstance(model, Pipeline) else [model]
    mlp, before = steps[-1], steps[:-1] + ([scaler] if scaler is not None else [])
    if not isinstance(mlp, MLPClassifier) or not hasattr(mlp, "coefs_"):
        raise HarnessError("model", type(mlp).__name__, "give a fitted MLPClassifier, or a Pipeline that ends in one")
    mean = scale = None
    for step in before:
        if isinstance(step, Normalizer) and step.norm == "l2" and mean is None:
            l2 = True
        elif isinstance(step, StandardScaler) and mean is None:
            mean = step.mean_ if step.with_mean else None
            scale = step.scale_ if step.with_std else None
        else:
            raise HarnessError("model", type(step).__name__, "the steps before the MLPClassifier may be an l2 Normalizer, "
                               "then a StandardScaler; save another transform's output as the inputs instead")
    weights = [torch.as_tensor(w).T.float() for w in mlp.coefs_]
    head = head_from_layers(weights, [torch.as_tensor(b).float() for b in mlp.intercepts_], mlp.activation)
    meta = {"source": "sklearn", "classes": [str(c) for c in mlp.classes_]}
    return _save(head, path, meta, frame_of(head.in_dim, mean, scale, l2), l2)
