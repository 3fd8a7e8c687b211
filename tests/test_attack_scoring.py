"""Pixel-space SSIM scoring matches scikit-image and behaves at the extremes."""

import numpy as np
import torch

from harness.scoring.pixels import GOOD_SSIM, match_pixels, ssim_pairs, ssim_skimage, to_images


def test_batched_ssim_equals_skimage():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(4, 3, 32, 32, generator=g, dtype=torch.float64)
    b = (a + 0.4 * torch.rand(4, 3, 32, 32, generator=g, dtype=torch.float64)).clamp(0, 1)
    fast = ssim_pairs(a, b)
    for i in range(4):
        assert abs(float(fast[i]) - ssim_skimage(a[i], b[i])) < 1e-9


def test_normalisation_is_per_image_min_max():
    mean = torch.full((3072,), 0.2)
    v = torch.linspace(-1, 1, 3072).repeat(2, 1) * torch.tensor([[1.0], [0.1]])
    img = to_images(v, mean)
    assert img.shape == (2, 3, 32, 32)
    assert float(img.min()) == 0.0 and float(img.max()) == 1.0
    assert torch.allclose(img[0], img[1])  # min-max removes scale


def test_match_pixels_finds_planted_copies_and_not_noise():
    g = torch.Generator().manual_seed(1)
    mean = torch.rand(3072, generator=g) - 0.5
    members = torch.rand(10, 3072, generator=g) * 2 - 1 - mean
    nonmembers = torch.rand(200, 3072, generator=g) * 2 - 1 - mean
    cands = torch.cat([members[:5] * 0.7 + 0.05 * torch.randn(5, 3072, generator=g), torch.randn(50, 3072, generator=g)])
    s = match_pixels(cands, members, nonmembers, mean)
    assert (s.member_best[:5] > 0.9).all() and (s.member_best[5:] < GOOD_SSIM).all()
    assert s.good == 5 and s.tpr == 0.5 and s.nonmember_good_fraction == 0.0
    assert np.isfinite(s.threshold) and s.threshold < 0.2
