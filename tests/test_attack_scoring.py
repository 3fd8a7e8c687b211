"""Pixel-space SSIM scoring matches scikit-image and behaves at the extremes; the public inputs as a floor."""

import numpy as np
import torch

from harness.scoring.embedding import match
from harness.scoring.pixels import GOOD_SSIM, match_pixels, ssim_pairs, ssim_skimage, to_images
from harness.scoring.verdict import verdict


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
    assert int(s.passed().sum()) == 5  # the count the TPR is of (the summary's passed_ssim)
    assert np.isfinite(s.threshold) and s.threshold < 0.2


def test_public_images_alone_set_a_floor_that_beyond_public_discounts():
    """A member with a public near-copy counts as matched by the public images alone; a candidate that matches
    it counts beyond them only when it is closer to the member than that copy."""
    g = torch.Generator().manual_seed(2)
    mean = torch.rand(3072, generator=g) - 0.5
    members = torch.rand(6, 3072, generator=g) * 2 - 1 - mean
    others = torch.rand(100, 3072, generator=g) * 2 - 1 - mean
    # members 0 and 1 have a public look-alike; member 0's candidate is closer than it, member 1's is not
    public = torch.cat([others, members[:2] * 0.8 + 0.15 * torch.randn(2, 3072, generator=g)])
    cands = torch.cat([members[:1] + 0.01 * torch.randn(1, 3072, generator=g),
                       members[1:2] * 0.8 + 0.3 * torch.randn(1, 3072, generator=g),
                       members[2:4] + 0.01 * torch.randn(2, 3072, generator=g), torch.randn(20, 3072, generator=g)])
    s = match_pixels(cands, members, public, mean)
    assert s.member_public.shape == (6,)
    assert (s.member_public[:2] > GOOD_SSIM).all() and (s.member_public[2:] < GOOD_SSIM).all()
    assert s.public_good == 2
    assert s.member_best[1] > GOOD_SSIM and s.member_best[1] < s.member_public[1]  # matched, but no closer than public
    assert s.good == 4 and s.beyond_public == 3  # members 0, 2, 3


def test_cosine_scores_count_members_beyond_the_public_inputs():
    g = torch.Generator().manual_seed(3)
    members = torch.randn(5, 64, generator=g)
    public = torch.cat([torch.randn(50, 64, generator=g), members[:1] + 0.2 * torch.randn(1, 64, generator=g)])
    cands = torch.cat([members[:1] + 0.5 * torch.randn(1, 64, generator=g), members[1:3] + 0.1 * torch.randn(2, 64, generator=g)])
    s = match(cands, members, public)
    assert s.public_good(0.8) == 1 and s.member_public[0] > s.member_best[0] > 0.8 - 0.2
    assert s.beyond_public(0.8) == 2  # members 1 and 2; member 0 has a closer public input
    assert match(cands, members, public[:0]).beyond_public(0.8) is None  # no public inputs: no floor to state


def test_verdict_says_how_much_goes_beyond_the_public_inputs():
    plain = verdict(100, 40, 0.01, 0, 61)
    assert plain.startswith("61 of 100 members have a candidate close to them (SSIM > 0.4): reconstructions.")
    floor = verdict(100, 40, 0.01, 0, 61, public_good=21, beyond_public=45)
    assert "45 of them closer than any public input" in floor and "alone match 21 of the 100 members" in floor
    none = verdict(20, 3, 0.01, 0, 4, public_good=4, beyond_public=0)
    assert "no evidence of reconstruction beyond the public data" in none
    assert verdict(20, 3, 0.01, 5, public_good=0, beyond_public=5) == verdict(20, 3, 0.01, 5)  # nothing public: as before


def test_public_starts_are_scored_against_other_non_members():
    """kkt `init: public | mixed` starts candidates at public inputs; a candidate resting at its start must not
    match a scored non-member (it would lift the 1%-FPR threshold over every member), and the public floor
    still counts every public input."""
    import dataclasses

    from harness.attacks.base import AttackResult
    from harness.pipeline.stages import Embedded, score_stage, start_pool

    gen = torch.Generator().manual_seed(0)
    members, non = torch.randn(6, 16, generator=gen), torch.randn(20, 16, generator=gen)
    emb = Embedded(members, non, torch.zeros(16), False, True, 0.0)
    pool, control = start_pool({"init": "mixed"}, len(non))
    members[0] = non[pool[0]]  # a member with a public twin in the pool: the floor must see it
    assert set(pool.tolist()).isdisjoint(control.tolist()) and len(pool) + len(control) == len(non)
    assert len(start_pool({"init": "rows"}, len(non))[1]) == len(start_pool({}, len(non))[1]) == len(non)
    # the members found (with a little noise), and copies of the pool's non-members left where they started
    cands = torch.cat([members + 0.01 * torch.randn(6, 16, generator=gen), non[pool]])
    m = len(cands)
    result = AttackResult(cands, torch.zeros(m, dtype=torch.long), torch.ones(m), torch.zeros(m, dtype=torch.long), [], {"init": "mixed"})
    s = score_stage(result, emb, 0.01)
    assert len(s.nonmember_best) == len(control) and s.tpr == 1.0
    assert len(s.member_public) == len(members) and s.member_public[0] > 0.999 and s.public_good(0.8) == 1
    # scored on the pool itself (what `rows` would do with these candidates), the resting copies pass at cosine 1
    shared = score_stage(dataclasses.replace(result, params={"init": "rows"}), emb, 0.01)
    assert shared.tpr == 0.0


def test_the_ssim_candidate_indexes_the_full_candidate_list_when_runs_diverged():
    """Diverged runs leave non-finite candidates, which scoring skips: each member's SSIM candidate (and cosine one)
    must still index the attack's whole candidate list, as the candidates table numbers them."""
    from harness.attacks.base import AttackResult
    from harness.pipeline.stages import Embedded, pixel_score_stage, score_stage

    g = torch.Generator().manual_seed(2)
    mean = torch.rand(3072, generator=g) - 0.5
    members = torch.rand(4, 3072, generator=g) * 2 - 1 - mean
    nonmembers = torch.rand(20, 3072, generator=g) * 2 - 1 - mean
    diverged = torch.full((6, 3072), float("nan"))
    cands = torch.cat([diverged, members * 0.8 + 0.02 * torch.randn(4, 3072, generator=g)])  # member i is candidate 6 + i
    res = AttackResult(cands, torch.zeros(10, dtype=torch.long), torch.ones(10), torch.zeros(10, dtype=torch.long), [], {})
    emb = Embedded(members, nonmembers, mean, False, False, 0.0)
    px = pixel_score_stage(res, emb, 0.01, (3, 32, 32))
    assert px.member_best_idx.tolist() == [6, 7, 8, 9] and (px.member_best > 0.9).all()
    assert score_stage(res, emb, 0.01).member_best_idx.tolist() == [6, 7, 8, 9]


def test_best_ssim_is_over_every_candidate_not_a_cosine_shortlist():
    """The candidate closest by SSIM can sit far down by cosine: here the target's structure on a bright blob
    (low cosine, SSIM 0.55) beside 300 noisy copies (higher cosine, SSIM at most 0.44). The best SSIM is the
    brute-force best over all candidates (it was taken over the 64 best by cosine: a too-low SSIM, threshold and
    count)."""
    from harness.scoring.embedding import cosine_matrix
    from harness.scoring.pixels import best_ssim

    g = torch.Generator().manual_seed(0)
    t = torch.rand(1, 3, 32, 32, generator=g, dtype=torch.float64)
    noisy = (t + 0.6 * torch.randn(300, 3, 32, 32, generator=g, dtype=torch.float64)).clamp(0, 1)
    yy, xx = torch.meshgrid(*(torch.linspace(-1, 1, 32, dtype=torch.float64),) * 2, indexing="ij")
    look = t + 2.0 * torch.exp(-(xx**2 + yy**2) * 2)
    look = (look - look.min()) / (look.max() - look.min())
    cands = torch.cat([noisy, look])
    cos = cosine_matrix(t.flatten(1) - 0.5, cands.flatten(1) - 0.5)[0]
    assert int((cos > cos[-1]).sum()) > 64  # the look-alike is outside a 64-candidate shortlist by cosine
    brute = [ssim_skimage(t[0], c) for c in cands]
    best, idx = best_ssim(t, cands)
    assert idx[0] == int(np.argmax(brute)) == 300 and abs(best[0] - max(brute)) < 1e-12
