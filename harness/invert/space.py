"""The space the attack works in: backbone embedding, optional L2 normalisation, minus the member mean."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from harness.backbones.cache import embed_cached
from harness.backbones.load import Backbone
from harness.errors import HarnessError


@dataclass
class EmbedSpace:
    backbone: Backbone
    normalize: bool
    mean: torch.Tensor  # (d,) member mean subtracted by the victim
    cache_dir: Path | None = None

    @property
    def dim(self) -> int:
        return int(self.mean.shape[0])

    def centre(self, raw: torch.Tensor) -> torch.Tensor:
        raw = raw.float()
        if self.normalize:
            raw = torch.nn.functional.normalize(raw, dim=1)
        return raw - self.mean.to(raw.device, torch.float32)

    def embed(self, inputs: Sequence[Any], cached: bool = False, progress: bool = False) -> torch.Tensor:
        """Centred embeddings of raw inputs (texts or images); `cached` goes through the embedding cache."""
        if len(inputs) == 0:
            return torch.empty(0, self.dim)
        if cached:
            raw = embed_cached(self.backbone, list(inputs), self.cache_dir, progress=progress)[0]
        else:
            raw = self.backbone.embed(list(inputs), progress=False)
        return self.centre(raw)

    def check_targets(self, targets: torch.Tensor) -> torch.Tensor:
        if targets.ndim != 2 or targets.shape[1] != self.dim:
            raise HarnessError(
                "targets", tuple(targets.shape),
                f"do not match the backbone {self.backbone.card.id}: it embeds to {self.dim}-d; invert vectors of that size",
            )
        return targets.float()
