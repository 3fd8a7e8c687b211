"""SSIM scoring in pixel space (the `identity` backbone), after the published normalisation.

Candidates and members are flattened 3x32x32 images in [-1, 1] minus the member mean. Each is
un-centred (mean added back) and min-max scaled to [0, 1] per image, then compared by SSIM
(scikit-image's definition: 7x7 uniform window, sample covariance, mean over channels). A
reconstruction is good at SSIM > 0.4. Every pair is screened with an exact batched torch copy of
that SSIM (no cosine shortlist: the image closest by SSIM is often far down by cosine); each
target's best few are confirmed with scikit-image. The screen runs on the GPU where one is present.
Each member is also scored against the public images (the non-members) alone: a natural image often
has a public look-alike at SSIM > 0.4 (sky, fields), which no search needs to find.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from skimage.metrics import structural_similarity

from harness.progress import bar as progress_bar
from harness.scoring.embedding import beyond_public, public_good, threshold_at_fpr

GOOD_SSIM = 0.4


def to_images(v: torch.Tensor, mean: torch.Tensor, shape=(3, 32, 32)) -> torch.Tensor:
    """(N, C*H*W) centred -> (N, C, H, W) in [0, 1]: add the mean back, min-max per image."""
    u = (v.double() + mean.double()).reshape(len(v), *shape)
    lo = u.flatten(1).min(1).values.view(-1, 1, 1, 1)
    hi = u.flatten(1).max(1).values.view(-1, 1, 1, 1)
    return (u - lo) / (hi - lo).clamp_min(1e-12)


def _box(t: torch.Tensor, win: int = 7) -> torch.Tensor:
    """The mean over each win x win window inside the image (skimage's uniform filter, cropped to the valid
    region), by running sums: a few passes per image whatever the window."""
    c = F.pad(t, (0, 0, 1, 0)).cumsum(2)
    rows = c[:, :, win:] - c[:, :, :-win]
    c = F.pad(rows, (1, 0)).cumsum(3)
    return (c[..., win:] - c[..., :-win]) / (win * win)


@dataclass
class _Windows:
    """An image batch's window means and sample variances (what SSIM needs of each image alone)."""

    img: torch.Tensor
    mean: torch.Tensor
    var: torch.Tensor

    @classmethod
    def of(cls, img: torch.Tensor, win: int = 7) -> "_Windows":
        mean = _box(img, win)
        return cls(img, mean, win * win / (win * win - 1) * (_box(img * img, win) - mean * mean))


def _ssim(a: _Windows, b: _Windows, win: int = 7) -> torch.Tensor:
    """SSIM of a[i] and b[i] (or of one a against every b), as skimage computes it."""
    c1, c2 = 0.01**2, 0.03**2
    cov = win * win / (win * win - 1) * (_box(a.img * b.img, win) - a.mean * b.mean)
    s = ((2 * a.mean * b.mean + c1) * (2 * cov + c2)) / ((a.mean**2 + b.mean**2 + c1) * (a.var + b.var + c2))
    return s.flatten(1).mean(1)


def ssim_pairs(a: torch.Tensor, b: torch.Tensor, win: int = 7) -> torch.Tensor:
    """SSIM of matching pairs a[i], b[i] (N, C, H, W) in [0, 1], as skimage computes it."""
    return _ssim(_Windows.of(a, win), _Windows.of(b, win), win)


def ssim_skimage(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(
        structural_similarity(
            a.permute(1, 2, 0).numpy(), b.permute(1, 2, 0).numpy(), channel_axis=-1, data_range=1.0
        )
    )


@dataclass
class PixelScores:
    member_best: np.ndarray  # (n,) best SSIM of each member to any candidate
    member_best_idx: np.ndarray
    nonmember_best: np.ndarray  # (k,)
    threshold: float  # SSIM at which `fpr` of non-members pass
    fpr: float
    tpr: float  # members above the threshold
    good: int  # members with SSIM > GOOD_SSIM
    good_fraction: float
    nonmember_good_fraction: float
    member_public: np.ndarray  # (n,) best SSIM of each member to a public (non-member) image; empty without them
    good_first_half: int | None = None  # members at SSIM > 0.4 from the first half of the search (scoring/saturation.py)

    def passed(self) -> np.ndarray:
        """Members above the SSIM threshold (the count the TPR is of)."""
        return self.member_best > self.threshold

    @property
    def public_good(self) -> int | None:
        """Members a public image alone matches at SSIM > 0.4."""
        return public_good(self.member_public, GOOD_SSIM)

    @property
    def beyond_public(self) -> int | None:
        """Members with a candidate at SSIM > 0.4 that is closer to them than any public image."""
        return beyond_public(self.member_best, self.member_public, GOOD_SSIM)


def best_ssim(targets: torch.Tensor, cands: torch.Tensor, confirm: int = 3, chunk: int = 128,
              device: str = "cpu", progress: bool = False, what: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Best SSIM (and index) of each target image over every candidate image: the SSIM of every pair in float32 on
    `device` (candidates in chunks that stay in cache), each target's `confirm` best confirmed by scikit-image."""
    best = np.zeros(len(targets))
    idx = np.zeros(len(targets), dtype=np.int64)
    chunk = chunk if device == "cpu" else 32 * chunk  # a GPU wants large batches
    parts = [_Windows.of(c) for c in cands.to(device, torch.float32).split(chunk)]  # each candidate's windows, once
    shown = progress and len(targets) * len(cands) > 1_000_000  # a bar where it takes more than a few seconds
    for i in progress_bar(range(len(targets)), desc=f"SSIM {what}".strip(), unit="target", disable=not shown):
        a = _Windows.of(targets[i : i + 1].to(device, torch.float32))
        s = torch.cat([_ssim(a, b) for b in parts])
        order = torch.argsort(s, descending=True)[: min(confirm, len(s))].tolist()
        sk = [ssim_skimage(targets[i], cands[j]) for j in order]
        j = int(np.argmax(sk))
        best[i], idx[i] = sk[j], order[j]
    return best, idx


def match_pixels(
    candidates: torch.Tensor,
    members: torch.Tensor,
    nonmembers: torch.Tensor,
    mean: torch.Tensor,
    fpr: float = 0.01,
    shape=(3, 32, 32),
    public: torch.Tensor | None = None,
    device: str = "cpu",
    progress: bool = False,
    member_public: np.ndarray | None = None,
) -> PixelScores:
    """Best-candidate SSIM per member and per non-member (all centred by `mean`), threshold, TPR, and each
    member's best SSIM to a public image (`public`, default the non-members: the public images alone; or
    `member_public`, that floor already measured: it is the same for every victim of a unit). The pairs are
    screened on `device`."""
    if len(candidates) == 0:
        raise ValueError("no candidates to score")
    c, m = to_images(candidates, mean, shape), to_images(members, mean, shape)
    mb, mi = best_ssim(m, c, device=device, progress=progress, what="members")
    non = to_images(nonmembers, mean, shape) if len(nonmembers) else None
    pub = non if public is None else (to_images(public, mean, shape) if len(public) else None)
    nb = best_ssim(non, c, device=device, progress=progress, what="non-members")[0] if non is not None else np.zeros(0)
    if member_public is not None:
        mp = member_public
    else:
        mp = best_ssim(m, pub, device=device, progress=progress, what="public floor")[0] if pub is not None else np.zeros(0)
    thr = threshold_at_fpr(nb, fpr)
    tpr = float((mb > thr).mean()) if np.isfinite(thr) else float("nan")
    return PixelScores(
        mb, mi, nb, thr, fpr, tpr, int((mb > GOOD_SSIM).sum()), float((mb > GOOD_SSIM).mean()),
        float((nb > GOOD_SSIM).mean()) if len(nb) else float("nan"), mp,
    )
