"""SSIM scoring in pixel space (the `identity` backbone), after the published normalisation.

Candidates and members are flattened 3x32x32 images in [-1, 1] minus the member mean. Each is
un-centred (mean added back) and min-max scaled to [0, 1] per image, then compared by SSIM
(scikit-image's definition: 7x7 uniform window, sample covariance, mean over channels). A
reconstruction is good at SSIM > 0.4. All pairs are screened with an exact batched torch copy of
that SSIM on the `prefilter` best pairs by cosine; the best pairs are confirmed with scikit-image.
Each member is also scored against the public images (the non-members) alone: a natural image often
has a public look-alike at SSIM > 0.4 (sky, fields), which no search needs to find.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from skimage.metrics import structural_similarity

from harness.scoring.embedding import beyond_public, cosine_matrix, public_good, threshold_at_fpr

GOOD_SSIM = 0.4


def to_images(v: torch.Tensor, mean: torch.Tensor, shape=(3, 32, 32)) -> torch.Tensor:
    """(N, C*H*W) centred -> (N, C, H, W) in [0, 1]: add the mean back, min-max per image."""
    u = (v.double() + mean.double()).reshape(len(v), *shape)
    lo = u.flatten(1).min(1).values.view(-1, 1, 1, 1)
    hi = u.flatten(1).max(1).values.view(-1, 1, 1, 1)
    return (u - lo) / (hi - lo).clamp_min(1e-12)


def _stats(img: torch.Tensor, win: int = 7):
    pool = lambda t: F.avg_pool2d(t, win, stride=1)  # noqa: E731 - the valid region = skimage's crop
    return pool(img), pool(img * img)


def ssim_pairs(a: torch.Tensor, b: torch.Tensor, win: int = 7) -> torch.Tensor:
    """SSIM of matching pairs a[i], b[i] (N, C, H, W) in [0, 1], as skimage computes it."""
    c1, c2 = 0.01**2, 0.03**2
    cov = win * win / (win * win - 1)
    ua, uaa = _stats(a, win)
    ub, ubb = _stats(b, win)
    uab = F.avg_pool2d(a * b, win, stride=1)
    va, vb, vab = cov * (uaa - ua * ua), cov * (ubb - ub * ub), cov * (uab - ua * ub)
    s = ((2 * ua * ub + c1) * (2 * vab + c2)) / ((ua * ua + ub * ub + c1) * (va + vb + c2))
    return s.flatten(1).mean(1)


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

    @property
    def public_good(self) -> int | None:
        """Members a public image alone matches at SSIM > 0.4."""
        return public_good(self.member_public, GOOD_SSIM)

    @property
    def beyond_public(self) -> int | None:
        """Members with a candidate at SSIM > 0.4 that is closer to them than any public image."""
        return beyond_public(self.member_best, self.member_public, GOOD_SSIM)


def best_ssim(targets: torch.Tensor, cands: torch.Tensor, prefilter: int, confirm: int = 3):
    """Best SSIM (and index) of each target image over candidate images."""
    k = min(prefilter, len(cands))
    top = cosine_matrix(targets.flatten(1) - 0.5, cands.flatten(1) - 0.5).topk(k, dim=1).indices
    best = np.zeros(len(targets))
    idx = np.zeros(len(targets), dtype=np.int64)
    for i in range(len(targets)):
        s = ssim_pairs(targets[i].expand(k, *targets.shape[1:]), cands[top[i]])
        order = torch.argsort(s, descending=True)[: min(confirm, k)]
        sk = [ssim_skimage(targets[i], cands[top[i, j]]) for j in order.tolist()]
        j = int(np.argmax(sk))
        best[i], idx[i] = sk[j], int(top[i, order[j]])
    return best, idx


def match_pixels(
    candidates: torch.Tensor,
    members: torch.Tensor,
    nonmembers: torch.Tensor,
    mean: torch.Tensor,
    fpr: float = 0.01,
    prefilter: int = 64,
    shape=(3, 32, 32),
    public: torch.Tensor | None = None,
) -> PixelScores:
    """Best-candidate SSIM per member and per non-member (all centred by `mean`), threshold, TPR, and each
    member's best SSIM to a public image (`public`, default the non-members: the public images alone)."""
    if len(candidates) == 0:
        raise ValueError("no candidates to score")
    c, m = to_images(candidates, mean, shape), to_images(members, mean, shape)
    mb, mi = best_ssim(m, c, prefilter)
    non = to_images(nonmembers, mean, shape) if len(nonmembers) else None
    pub = non if public is None else (to_images(public, mean, shape) if len(public) else None)
    nb = best_ssim(non, c, prefilter)[0] if non is not None else np.zeros(0)
    mp = best_ssim(m, pub, prefilter)[0] if pub is not None else np.zeros(0)
    thr = threshold_at_fpr(nb, fpr)
    tpr = float((mb > thr).mean()) if np.isfinite(thr) else float("nan")
    return PixelScores(
        mb, mi, nb, thr, fpr, tpr, int((mb > GOOD_SSIM).sum()), float((mb > GOOD_SSIM).mean()),
        float((nb > GOOD_SSIM).mean()) if len(nb) else float("nan"), mp,
    )
