"""What the first half of the search's runs reconstructs, beside the whole search: counted by the scores' own rules
(cosine for every victim, SSIM for images), and said in one sentence where the second half still added members."""

import torch

from harness.attacks.base import AttackResult, RunRecord
from harness.pipeline.stages import Embedded, pixel_score_stage, score_stage
from harness.scoring.saturation import first_half
from harness.scoring.verdict import budget_note, doubts


def _result(cands: torch.Tensor, run_ids: list[int], runs: int, records=None) -> AttackResult:
    m = len(cands)
    records = records or [RunRecord(i, {}, "ok", 10, 0.1, 0.0) for i in range(runs)]
    return AttackResult(cands, torch.zeros(m, dtype=torch.long), torch.ones(m), torch.tensor(run_ids), records, {})


def test_first_half_is_the_runs_with_the_lower_ids_and_leaves_non_finite_candidates_out():
    cands = torch.randn(6, 4)
    cands[1] = float("nan")
    res = _result(cands, [0, 1, 1, 2, 3, 3], runs=4)  # runs 0-1 are the first half
    assert first_half(res).tolist() == [True, False, True, False, False, False]
    assert first_half(_result(cands, [0] * 6, runs=1)) is None  # one run: no half to compare


def test_kkt_searches_are_halved_by_bracket_not_by_run_id():
    """Successive halving leaves a bracket's candidates to the restarts that outlived its rungs, whatever their ids
    (with one bracket of 16 the survivors may all sit in the upper half of the ids): kkt's halves are its brackets."""
    cands = torch.randn(4, 3)

    def run(i, bracket, status="ok"):
        return RunRecord(i, {} if bracket is None else {"bracket": bracket}, status, 10, 0.1, 0.0)

    # two brackets of four restarts; the survivors are restarts 3 and 7 (the last of each bracket)
    two = [run(i, i // 4, "ok" if i % 4 == 3 else "pruned") for i in range(8)]
    assert first_half(_result(cands, [3, 3, 7, 7], 8, two)).tolist() == [True, True, False, False]
    one = [run(i, 0, "ok" if i >= 6 else "pruned") for i in range(8)]  # one bracket: no half
    assert first_half(_result(cands, [6, 6, 7, 7], 8, one)) is None
    old = [run(i, None, "ok" if i >= 6 else "pruned") for i in range(8)]  # pruned, bracket not recorded: no half
    assert first_half(_result(cands, [6, 6, 7, 7], 8, old)) is None
    three = [run(i, i // 2) for i in range(6)]  # three brackets: the first one is the half that is compared
    assert first_half(_result(cands, [0, 2, 3, 4], 6, three)).tolist() == [True, False, False, False]


def test_cosine_half_counts_what_the_first_half_found_and_the_note_says_the_second_half_added():
    g = torch.Generator().manual_seed(0)
    members, non = torch.randn(5, 16, generator=g), torch.randn(30, 16, generator=g)
    emb = Embedded(members, non, torch.zeros(16), False, True, 0.0)
    near = members + 0.01 * torch.randn(5, 16, generator=g)
    # runs 0-1 (the first half) find members 0 and 1; runs 2-3 find members 2, 3 and 4
    res = _result(torch.cat([near[:2], near[2:]]), [0, 1, 2, 3, 3], runs=4)
    s = score_stage(res, emb, 0.01)
    assert int((s.member_best > 0.8).sum()) == 5 and s.good_first_half == 2
    said = budget_note(5, s.good_first_half)
    assert said and "first half found 2, the second half added 3 of the 5" in said
    # the same candidates found in the opposite order: the first half already had three, the second added two
    s = score_stage(_result(torch.cat([near[:2], near[2:]]), [2, 3, 0, 1, 1], runs=4), emb, 0.01)
    assert s.good_first_half == 3
    # nothing added: no sentence; one run: no half
    assert budget_note(5, 5) is None and budget_note(5, None) is None and budget_note(0, 0) is None
    assert score_stage(_result(near, [0] * 5, runs=1), emb, 0.01).good_first_half is None
    assert budget_note(40, 37) is None and budget_note(40, 36)  # a tenth of the members, at least one
    assert doubts("paper", 1.0, 0.1, 2, 0.3, 0.01, False, 40, 30)[-1].startswith("The search was still finding")


def test_ssim_half_counts_images_by_ssim():
    g = torch.Generator().manual_seed(2)
    mean = torch.rand(3072, generator=g) - 0.5
    members = torch.rand(4, 3072, generator=g) * 2 - 1 - mean
    non = torch.rand(20, 3072, generator=g) * 2 - 1 - mean
    emb = Embedded(members, non, mean, False, False, 0.0)
    near = members * 0.8 + 0.02 * torch.randn(4, 3072, generator=g)
    px = pixel_score_stage(_result(near, [0, 2, 2, 3], runs=4), emb, 0.01, (3, 32, 32))
    assert px.good == 4 and px.good_first_half == 1
