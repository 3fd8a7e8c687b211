"""Recombination: restarts started from earlier restarts' candidates (harness/attacks/recombine.py)."""

import torch

from harness.attacks import make_attack
from harness.attacks.recombine import Pool
from harness.scoring.embedding import match
from harness.specs.task import HeadRecipe
from tests.test_attack_kkt import victim_of


def test_pool_draws_heavy_candidates_of_the_slot_class_without_duplicates():
    pool = Pool()
    d = 5
    heavy0, heavy1, light0 = torch.eye(d)[0] * 3, torch.eye(d)[1] * 3, torch.eye(d)[2] * 3
    # class 0: a heavy candidate twice (a duplicate) and a light one; class 1: a heavy one
    pool.add(torch.stack([heavy0, heavy0 * 1.01, light0, heavy1]), torch.tensor([5.0, 5.0, 1e-6, 4.0]),
             torch.tensor([0, 0, 0, 1]))
    labels = torch.tensor([0, 1, 0, 1, 0, 1, 0, 1])
    base = torch.full((8, d), 7.0)
    out = pool.draw(base, labels, torch.Generator().manual_seed(0), fill=0.75)
    class0, class1 = out[labels == 0], out[labels == 1]
    assert torch.allclose(class0[0] / class0[0].norm(), torch.eye(d)[0])  # one of the pair, by weight
    assert torch.equal(class0[1], light0)  # the other of the pair skipped as a duplicate
    assert torch.equal(class0[2], base[0]) and torch.equal(class1[0], heavy1)
    assert (class1[1:] == 7.0).all()  # no more class-1 candidates: the base stays
    assert len(pool) == 4


def test_pool_ignores_zero_and_non_finite_multipliers():
    pool = Pool()
    pool.add(torch.tensor([[1.0, 0.0], [float("nan"), 0.0], [0.0, 1.0]]), torch.tensor([0.0, 1.0, 2.0]), torch.tensor([0, 0, 1]))
    assert len(pool) == 1


PLANTED = HeadRecipe(widths=[256], init_scale=1e-3, lr=1.0, max_steps=8000, target_loss=1e-5, grad_tol=1e-5)


def test_recombined_brackets_start_from_earlier_finds_and_keep_them():
    torch.set_num_threads(1)
    torch.manual_seed(5)
    x, y = torch.randn(8, 10), torch.arange(8) % 2
    victim, _, members = victim_of(x, y, 2, PLANTED, typical_norm=float((x - x.mean(0)).norm(dim=1).mean()))
    p = {"m": 16, "restarts": 8, "iterations": 300, "brackets": 3, "seed": 0, "subspace": "off"}
    plain = make_attack("kkt", {**p, "recombine": 0}).reconstruct(victim, progress=False)
    rec = make_attack("kkt", p).reconstruct(victim, progress=False)  # the default: half the restarts recombined
    inits = [r.settings["init"] for r in rec.runs]
    assert inits[:8] == ["rows"] * 8  # the first bracket has nothing to recombine
    assert inits[8:12] == ["recombined"] * 4 and inits[12:16] == ["rows"] * 4
    assert all(r.settings["init"] == "rows" for r in plain.runs)
    assert [r.settings["bracket"] for r in rec.runs] == [b for b in range(3) for _ in range(8)]  # what scoring halves
    best = lambda res: min(r.final_loss for r in res.runs if r.status == "ok")  # noqa: E731
    last = lambda res: [r.final_loss for r in res.runs[16:] if r.status == "ok"]  # noqa: E731
    # the third bracket's recombined restarts start where earlier ones ended: no worse than what was found
    assert min(last(rec)) <= best(rec) * 1.5
    got = match(rec.candidates, members, members[:0])
    assert int((got.member_best > 0.9).sum()) >= int((match(plain.candidates, members, members[:0]).member_best > 0.9).sum()) - 1
