"""Input transforms a victim's owner publishes with the head, fitted on the training rows only.

A new transform is one class here and one line in TRANSFORMS.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from harness.victims.frame import Frame


class Transform:
    name: ClassVar[str]
    requires_l2: ClassVar[bool] = False  # the embeddings are L2-normalised before the transform

    def fit(self, u: torch.Tensor, l2: bool) -> Frame:
        raise NotImplementedError


class Raw(Transform):
    """The embeddings as the card gives them: no centring, no scaling (a head trained straight on them)."""

    name = "raw"

    def fit(self, u: torch.Tensor, l2: bool) -> Frame:
        return Frame(torch.zeros(u.shape[1], dtype=u.dtype), None, l2, self.name)


class Centre(Transform):
    """Centred only: subtract the training mean (the published attack's frame)."""

    name = "none"

    def fit(self, u: torch.Tensor, l2: bool) -> Frame:
        return Frame(u.mean(0), None, l2, self.name)


class Standardize(Transform):
    """Per-dimension z-scoring fitted on the training rows (scikit-learn's StandardScaler in a pipeline)."""

    name = "standardize"

    def fit(self, u: torch.Tensor, l2: bool) -> Frame:
        std = u.std(0, unbiased=False)  # StandardScaler: population std, and 1 where a dimension is constant
        std = torch.where(std > 1e-12 * std.abs().max().clamp_min(1e-30), std, torch.ones_like(std))
        return Frame(u.mean(0), std, l2, self.name)


class L2(Transform):
    """L2-normalise each embedding, then centre (normalised embeddings live on the unit sphere)."""

    name = "l2"
    requires_l2 = True

    def fit(self, u: torch.Tensor, l2: bool) -> Frame:
        return Frame(u.mean(0), None, True, self.name)


TRANSFORMS: dict[str, type[Transform]] = {
    Centre.name: Centre,
    Standardize.name: Standardize,
    L2.name: L2,
    Raw.name: Raw,
}
