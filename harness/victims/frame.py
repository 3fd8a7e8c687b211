"""A victim's input frame: the transform published with its head, that maps embeddings to head inputs.

    raw embedding e  --(L2, when the frame is on the sphere)-->  u  --  x = (u - mean) / scale

The attack works on head inputs x; candidates go back to the embedding space with `to_raw`. Priors
hold in the space where they are true (the unit sphere of normalised embeddings, the pixel box),
mapped through this transform, so the same attack works whatever the victim's input scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

MEAN_KEY = "member_mean"  # the name earlier head files used for the subtracted mean
SCALE_KEY = "frame_scale"


@dataclass
class Frame:
    mean: torch.Tensor  # (d,) subtracted from (normalised) embeddings
    scale: torch.Tensor | None = None  # (d,) divides after centring (standardize); None: 1
    l2: bool = False  # embeddings were L2-normalised before centring (their domain is the unit sphere)
    transform: str = "none"  # the recipe's name for it

    @property
    def dim(self) -> int:
        return int(self.mean.shape[0])

    def apply(self, u: torch.Tensor) -> torch.Tensor:
        """Head inputs from (already normalised, when l2) embeddings."""
        x = u - self.mean.to(u)
        return x if self.scale is None else x / self.scale.to(u)

    def to_raw(self, x: torch.Tensor) -> torch.Tensor:
        """Embeddings from head inputs (any leading dims)."""
        u = x if self.scale is None else x * self.scale.to(x)
        return u + self.mean.to(x)

    def to(self, dtype) -> "Frame":
        s = None if self.scale is None else self.scale.to(dtype)
        return Frame(self.mean.to(dtype), s, self.l2, self.transform)

    def typical_norm(self) -> float:
        """A data-free guess of a head input's norm: sqrt(d) after standardisation, the centred unit
        sphere's sqrt(1 - |mean|^2) for normalised embeddings, else 1."""
        if self.scale is not None:
            return math.sqrt(self.dim)
        if self.l2:
            return math.sqrt(max(1.0 - float(self.mean.double().pow(2).sum()), 1e-6))
        return 1.0

    def tensors(self) -> dict[str, torch.Tensor]:
        out = {MEAN_KEY: self.mean.detach().float().contiguous().cpu()}
        if self.scale is not None:
            out[SCALE_KEY] = self.scale.detach().float().contiguous().cpu()
        return out

    def meta(self) -> dict:
        return {"l2": self.l2, "transform": self.transform}

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor], meta: dict | None, dim: int) -> "Frame":
        """The frame saved with a head; a head saved without one is taken as centred at zero."""
        meta = meta if isinstance(meta, dict) else {}
        mean = tensors.get(MEAN_KEY)
        mean = torch.zeros(dim) if mean is None else mean.float()
        scale = tensors.get(SCALE_KEY)
        said = meta.get("transform") or ("standardize" if scale is not None else "none")  # a scale alone: standardised
        return cls(mean, None if scale is None else scale.float(), bool(meta.get("l2", False)), str(said))
