"""Selection without ground truth: planted recurring candidates must outrank scattered ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.errors import HarnessError
from harness.select import lowest_loss_order, score_selection, select_candidates


def _planted(seed=0, n=6, d=64, runs=8, per_run=4, junk=4, noise=0.15):
    """Each run finds `per_run` random members (noisy copies) plus `junk` random vectors."""
    g = torch.Generator().manual_seed(seed)
    members = torch.randn(n, d, generator=g)
    cands, run_ids = [], []
    for r in range(runs):
        pick = torch.randperm(n, generator=g)[:per_run]
        found = members[pick] + noise * members.norm(dim=1).mean() / d**0.5 * torch.randn(per_run, d, generator=g)
        cands += [found, torch.randn(junk, d, generator=g)]
        run_ids += [r] * (per_run + junk)
    return members, torch.cat(cands), torch.tensor(run_ids)


def test_recurring_candidates_are_ranked_first_and_cover_every_member():
    members, cands, runs = _planted()
    sel = select_candidates(cands, runs, {r: 1.0 for r in range(8)})
    top = score_selection(cands[sel.rep_index], members, threshold=0.8)
    # the 6 recurring clusters come first, one per member, each supported by several runs
    assert top.hits[:6].all() and len(set(top.member[:6].tolist())) == 6
    assert (sel.support[:6] >= 2).all() and (sel.support[6:] == 1).all()
    assert top.precision[10] == pytest.approx(0.6) and top.recall[10] == pytest.approx(1.0)
    assert (np.diff(sel.confidence) <= 1e-12).all() and sel.confidence[0] > 0.3 and sel.confidence[-1] == 0
    assert (sel.tightness[:6] > 0.9).all()
    assert sel.cluster_of.min() == 0 and sel.cluster_of.max() == len(sel) - 1
    # representatives are real candidates (medoids), never averages
    assert set(sel.rep_index.tolist()) <= set(range(len(cands)))


def test_clustering_beats_lowest_loss_when_the_loss_favours_junk():
    members, cands, runs = _planted(seed=1)
    losses = {r: 1.0 + r for r in range(8)}  # run 0 lowest: its junk is mixed into the baseline's top
    sel = select_candidates(cands, runs, losses)
    ours = score_selection(cands[sel.rep_index], members, 0.8)
    base = score_selection(cands[lowest_loss_order(runs, losses)], members, 0.8)
    assert ours.precision[10] == pytest.approx(0.6)
    # the baseline takes whole runs in loss order: 8 picks per run, at most 4 of them real
    assert base.precision[10] <= 0.5 and base.recall[10] < 1.0


def test_the_multipliers_rank_members_above_recurring_fill_in():
    """Configurations every run also finds, but gives little of θ (small λ), rank behind the members when the
    confidence is weighed by λ (the default), though they recur as often and sit tighter."""
    g = torch.Generator().manual_seed(3)
    n, d, runs = 5, 64, 6
    members, fill = torch.randn(n, d, generator=g), torch.randn(n, d, generator=g)
    cands, run_ids, lams = [], [], []
    for r in range(runs):
        cands += [members + 0.3 * torch.randn(n, d, generator=g), fill + 0.05 * torch.randn(n, d, generator=g)]
        run_ids += [r] * 2 * n
        lams += [torch.full((n,), 1.0), torch.full((n,), 0.02)]
    cands, run_ids, lams = torch.cat(cands), torch.tensor(run_ids), torch.cat(lams)
    weighed = select_candidates(cands, run_ids, None, lams)
    plain = select_candidates(cands, run_ids, None, lams, weigh_lambda=False)
    top = lambda sel: score_selection(cands[sel.rep_index], members, 0.8, ks=(5,)).precision[5]  # noqa: E731
    assert top(weighed) == pytest.approx(1.0) and weighed.params["weigh_lambda"]
    assert top(plain) == pytest.approx(0.0)  # recurrence x tightness alone: the tighter fill-in first
    assert weighed.confidence[0] == pytest.approx(weighed.tightness[0]) and weighed.confidence[n] < 0.05
    # an MSE head's multipliers are signed: their size is what weighs
    assert top(select_candidates(cands, run_ids, None, -lams)) == pytest.approx(1.0)


def test_dbscan_agrees_on_the_planted_case():
    members, cands, runs = _planted(seed=2)
    sel = select_candidates(cands, runs, method="dbscan")
    top = score_selection(cands[sel.rep_index], members, 0.8)
    assert top.hits[:6].all() and top.recall[10] == 1.0


def test_distinct_members_and_precision_below_k():
    members = torch.eye(4)
    ranked = torch.stack([members[0], members[0] * 2, members[1], -members[2]])
    top = score_selection(ranked, members, threshold=0.5, ks=(2, 10))
    assert top.hits.tolist() == [True, False, True, False]  # a second copy of member 0 is no new member
    assert top.precision == {2: 0.5, 10: 0.2} and top.recall == {2: 0.25, 10: 0.5}  # missing ranks are misses


def test_single_run_uses_recurrence_within_the_run_and_skips_non_finite():
    members, cands, _ = _planted(seed=3, runs=1, per_run=6, junk=6)
    cands = torch.cat([cands, cands[:2] * 1.01, torch.full((1, cands.shape[1]), float("nan"))])
    sel = select_candidates(cands, torch.zeros(len(cands), dtype=torch.long))
    assert sel.size[:2].tolist() == [2, 2] and sel.confidence[0] > 0
    assert sel.cluster_of[-1] == -1 and len(cands) - 1 not in sel.rep_index


def test_lowest_loss_order():
    order = lowest_loss_order(torch.tensor([0, 0, 1, 1]), {0: 2.0, 1: 1.0}, torch.tensor([0.1, 0.9, 0.5, 0.7]))
    assert order.tolist() == [3, 2, 1, 0]


def test_regression_lambdas_rank_by_their_norm_and_are_stored_whole(tmp_path):
    from types import SimpleNamespace

    from harness.attacks.base import AttackResult
    from harness.pipeline.rows import candidate_rows
    from harness.store import ResultStore

    # a 3-output regression head: candidate 0's first lambda is the largest, candidate 1's vector the longest
    lam = torch.tensor([[0.9, 0.0, 0.0], [0.1, 2.0, -2.0], [0.6, 0.6, 0.6]])
    assert lowest_loss_order(torch.zeros(3), {0: 1.0}, lam).tolist() == [1, 2, 0]
    res = AttackResult(torch.randn(3, 4), torch.zeros(3, dtype=torch.long), lam, torch.zeros(3, dtype=torch.long), [], {})
    scores = SimpleNamespace(candidate_member=np.array([0, -1, 1]), candidate_best=np.array([0.5, float("nan"), 0.2]))
    o = SimpleNamespace(result=res, scores=scores, trained=SimpleNamespace(kind="real"))
    from harness.provenance import now_utc

    base = {k: "x" for k in ("unit_id", "task", "model", "model_id", "revision", "settings", "versions")}
    base.update(seed=0, created_at=now_utc())
    rows = candidate_rows(base, o)
    assert [r["lambdas"] for r in rows] == lam.double().tolist()
    assert np.allclose([r["lambda_"] for r in rows], lam.double().norm(dim=1).numpy())
    store = ResultStore(tmp_path / "r")
    store.write("candidates", "u", rows)
    assert np.allclose(store.read("candidates", ["lambdas"]).to_pylist()[1]["lambdas"], [0.1, 2.0, -2.0])
    one = candidate_rows(base, SimpleNamespace(
        result=AttackResult(res.candidates, res.labels, lam[:, 0], res.run_ids, [], {}), scores=scores, trained=o.trained))
    assert [r["lambda_"] for r in one] == lam[:, 0].double().tolist() and all(r["lambdas"] is None for r in one)


def test_bad_input():
    with pytest.raises(HarnessError, match="nothing to select"):
        select_candidates(torch.empty(0, 4), torch.empty(0))
    with pytest.raises(HarnessError, match="diverged"):
        select_candidates(torch.full((3, 4), float("nan")), torch.zeros(3))
    with pytest.raises(HarnessError, match="min_cosine"):
        select_candidates(torch.randn(3, 4), torch.zeros(3), min_cosine=1.5)
    with pytest.raises(HarnessError, match="method"):
        select_candidates(torch.randn(3, 4), torch.zeros(3), method="kmeans")


def test_runs_far_above_the_best_loss_are_not_pooled():
    members, cands, runs = _planted(seed=4)
    junk_run = torch.randn(8, cands.shape[1], generator=torch.Generator().manual_seed(9))
    # a run stuck at 100x the best loss, whose 8 candidates all repeat one spurious vector
    cands = torch.cat([cands, junk_run[:1].repeat(8, 1) + 0.01 * junk_run])
    runs = torch.cat([runs, torch.full((8,), 8)])
    losses = {**{r: 1.0 for r in range(8)}, 8: 100.0}
    sel = select_candidates(cands, runs, losses)
    assert sel.params["pool"] == len(cands) - 8 and (sel.cluster_of[-8:] == -1).all()
    pooled = select_candidates(cands, runs, losses, loss_factor=None)
    assert pooled.params["pool"] == len(cands) and (pooled.cluster_of[-8:] >= 0).all()
    with pytest.raises(HarnessError, match="loss_factor"):
        select_candidates(cands, runs, losses, loss_factor=0.5)


def test_near_duplicate_representatives_move_behind_the_rest():
    g = torch.Generator().manual_seed(5)
    a, b, c = torch.randn(3, 64, generator=g)
    twin = a + 0.55 * a.norm() / 8 * torch.randn(64, generator=g)  # cosine ~0.85 to a: a separate cluster at 0.95
    cands = torch.stack([a, a, a, twin, twin, b, b, c])
    runs = torch.tensor([0, 1, 2, 0, 1, 0, 0, 2])  # a: 3 runs, twin: 2, b: 1, c: 1
    sel = select_candidates(cands, runs, {0: 1.0, 1: 1.0, 2: 1.0}, min_cosine=0.95, suppress_cosine=0.7)
    reps = cands[sel.rep_index]
    assert torch.allclose(reps[-1], twin) and sel.duplicate_of[-1] == 0 and (sel.duplicate_of[:-1] == -1).all()
    kept = select_candidates(cands, runs, {0: 1.0, 1: 1.0, 2: 1.0}, min_cosine=0.95)  # off by default
    assert torch.allclose(cands[kept.rep_index[1]], twin) and (kept.duplicate_of == -1).all()
