"""Fine-tune a classification checkpoint on known members: a case whose training set is known exactly,
to measure what its head gives away (the default fine-tuned case, tests, benches).

Full batch (the gradient over every member each step, summed over chunks of 64 inputs), AdamW, dropout off, a fixed number of steps. With the
backbone frozen only the head's layers train, on the head inputs computed once; with it updated,
every parameter trains (the backbone at a smaller step size), the realistic fine-tune."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Sequence

import torch
from torch import nn

from harness.classifiers.checkpoint import CheckpointInfo, ClassifierHead, convert_head
from harness.heads.mlp import ACTIVATIONS
from harness.progress import bar as progress_bar


CHUNK = 64  # inputs per forward pass; a step's gradient is still over every member


@dataclass(frozen=True)
class FinetuneRecipe:
    update_backbone: bool = False
    steps: int = 300
    head_lr: float = 1e-3
    backbone_lr: float = 2e-5
    weight_decay: float = 1e-2
    seed: int = 0


def finetune(model: nn.Module, info: CheckpointInfo, encode: Callable[[Sequence[Any]], dict], inputs: Sequence[Any],
             labels: torch.Tensor, recipe: FinetuneRecipe, progress: bool = True) -> dict:
    """Train `model` in place on (inputs, labels); returns what was done and where it ended."""
    torch.manual_seed(recipe.seed)
    t0 = time.perf_counter()
    layers = [model.get_submodule(name) for name in info.layout.layers]
    head_params = [p for layer in layers for p in layer.parameters()]
    head_ids = {id(p) for p in head_params}
    rest = [p for p in model.parameters() if id(p) not in head_ids]
    for p in rest:
        p.requires_grad_(recipe.update_backbone)
    groups = [{"params": head_params, "lr": recipe.head_lr}]
    if recipe.update_backbone:
        groups.append({"params": rest, "lr": recipe.backbone_lr})
    opt = torch.optim.AdamW(groups, weight_decay=recipe.weight_decay)
    model.eval()  # dropout off: the same function every step, as the head's stationarity assumes
    chunks = [(encode(inputs[i : i + CHUNK]), labels[i : i + CHUNK]) for i in range(0, len(inputs), CHUNK)]
    cut = ClassifierHead(info, convert_head(model, info))
    with torch.no_grad():
        feats = None if recipe.update_backbone else [cut.forward(model, enc)[0] for enc, _ in chunks]
    act = ACTIVATIONS[info.layout.activation]

    def logits(k: int) -> torch.Tensor:
        if recipe.update_backbone:
            return model(**chunks[k][0]).logits
        x = feats[k]
        for i, layer in enumerate(layers):
            x = layer(x)
            x = act(x) if i < len(layers) - 1 else x
        return x

    n = len(labels)
    bar = progress_bar(total=recipe.steps, desc="fine-tune", unit="step", disable=not progress)
    for _ in range(recipe.steps):  # one full-batch step: the gradient summed over chunks (bounded memory)
        opt.zero_grad()
        for k, (_, y) in enumerate(chunks):
            (nn.functional.cross_entropy(logits(k), y, reduction="sum") / n).backward()
        opt.step()
        bar.update(1)
    bar.close()
    with torch.no_grad():
        out = torch.cat([logits(k) for k in range(len(chunks))])
        final = float(nn.functional.cross_entropy(out, labels))
        acc = float((out.argmax(1) == labels).float().mean())
    for p in model.parameters():
        p.requires_grad_(True)
    return {**asdict(recipe), "final_loss": final, "train_acc": acc, "n_train": len(labels),
            "wall_s": round(time.perf_counter() - t0, 1)}
