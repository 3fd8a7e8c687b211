"""Benchmark of issue 3's targets: quality, speed ratios and trends of the `kkt` attack.

    python bench/attack.py [--case text|pixels|multiclass|speed|trend|all] [--minutes N]

Every figure is measured in this run, side by side; ratios compare runs made here, now.
Skips (exit 0) where ../shared/data (or $RECON_SHARED_DATA) is absent.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
warnings.filterwarnings("ignore")

from attack_data import cifar_pixels, shared_data, sst2_embeddings  # noqa: E402

from harness.attacks import make_attack  # noqa: E402
from harness.diagnostics.oracle import oracle_residual  # noqa: E402
from harness.heads.train import TrainConfig  # noqa: E402
from harness.scoring.embedding import match  # noqa: E402
from harness.scoring.null_victim import VictimRecipe, build_victim  # noqa: E402
from harness.scoring.pixels import match_pixels  # noqa: E402

# Victim recipes (MLPHead + train_head knobs). Small init + weight decay, trained by Adam to a
# stationary point: the attack needs theta = sum lambda grad Phi, i.e. a small oracle residual.
def recipe(hidden=(1000,), wd=1e-3, init=1e-3, steps=3000, loss="logistic", lr=1e-3):
    return VictimRecipe(hidden, "first", init, TrainConfig(loss=loss, optimizer="adam", lr=lr, weight_decay=wd,
                                                           max_steps=steps, target_loss=1e-4, grad_tol=1e-6))


KKT_DEFAULT = {"m": 40, "restarts": 16, "iterations": 1500, "rungs": 3, "subspace": "auto"}


def say(*a):
    print(*a, flush=True)


def victim_for(x, y, classes, rec, prior, nonmembers, null=False):
    t = time.perf_counter()
    v, rep, xc = build_victim(x, y, classes, rec, prior=prior, null=null)
    nonc = nonmembers - v.mean
    v.typical_norm = float(nonc.norm(dim=1).mean())  # public-data estimate (non-members are public)
    orc = oracle_residual(v.head, v.loss, xc, y) if not null else float("nan")
    act = (v.head.activation_patterns(xc)[0].float().mean())
    say(f"  victim {v.head.dims} {'NULL (shuffled labels) ' if null else ''}train {time.perf_counter() - t:.0f}s "
        f"steps {rep.steps} loss {rep.final_loss:.1e} grad {rep.grad_norm:.1e} acc {rep.train_acc:.2f} "
        f"oracle residual {orc:.3g} active units {float(act):.2f}")
    return v, xc, nonc


def score(space, res, xc, nonc, v):
    if space == "pixels":
        s = match_pixels(res.candidates, xc, nonc, v.mean)
        return {"tpr": s.tpr, "thr": s.threshold, "good": s.good, "good_frac": s.good_fraction,
                "mean_best": float(s.member_best.mean()), "non_mean": float(s.nonmember_best.mean())}
    s = match(res.candidates, xc, nonc)
    return {"tpr": s.tpr, "thr": s.threshold, "good": int((s.member_best > s.threshold).sum()),
            "mean_best": float(s.member_best.mean()), "non_mean": float(s.nonmember_best.mean()),
            "over08": int((s.member_best > 0.8).sum())}


def fmt(sc):
    return " ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in sc.items())


def attack(v, xc, nonc, space, params, label, name="kkt"):
    t = time.perf_counter()
    res = make_attack(name, params).reconstruct(v, progress=False)
    wall = time.perf_counter() - t
    sc = score(space, res, xc, nonc, v)
    best = min((r.final_loss for r in res.runs if r.status == "ok"), default=float("nan"))
    say(f"    {label}: {wall:.0f}s runs {len(res.runs)} cands {len(res.candidates)} best loss {best:.3g} | {fmt(sc)}")
    return sc, wall, res


def case_text(minutes, hidden_list=((1000,), (1000, 1000))):
    say("== text: MiniLM/SST-2, binary, 10 members/class, 400 non-members")
    x, y, non = sst2_embeddings(10, 400)
    out = {}
    for hidden in hidden_list:
        v, xc, nonc = victim_for(x, y, 2, recipe(hidden), "sphere", non)
        budget = {**KKT_DEFAULT, "time_budget_s": minutes * 60}
        out[hidden] = attack(v, xc, nonc, "text", budget, f"kkt {budget}")[0]
        nv, _, _ = victim_for(x, y, 2, recipe(hidden), "sphere", non, null=True)
        attack(nv, xc, nonc, "text", budget, "kkt on NULL victim (shuffled labels, same inputs)")
    return out


def case_pixels(minutes):
    say("== pixels: CIFAR-10 automobile vs cat, 10/class, 3072-1000-1, 400 non-members")
    x, y, non = cifar_pixels([1, 3], 10, 400)
    v, xc, nonc = victim_for(x, y, 2, recipe((1000,)), "box", non)
    budget = {**KKT_DEFAULT, "time_budget_s": minutes * 60}
    attack(v, xc, nonc, "pixels", budget, f"kkt {budget}")
    nv, _, _ = victim_for(x, y, 2, recipe((1000,)), "box", non, null=True)
    attack(nv, xc, nonc, "pixels", budget, "kkt on NULL victim (shuffled labels)")


def case_multiclass(minutes):
    say("== multiclass: CIFAR-10 4 classes x 5, 3072-1000-4")
    x, y, non = cifar_pixels([0, 1, 3, 7], 5, 400)
    v, xc, nonc = victim_for(x, y, 4, recipe((1000,), loss="ce"), "box", non)
    attack(v, xc, nonc, "pixels", {**KKT_DEFAULT, "time_budget_s": minutes * 60}, "kkt")


def case_speed(minutes):
    say("== speed: same victim (MiniLM/SST-2 384-1000-1, n=20), same m=40, side by side")
    x, y, non = sst2_embeddings(10, 400)
    v, xc, nonc = victim_for(x, y, 2, recipe((1000,)), "sphere", non)
    its = 60
    ref_p = {"m": 40, "restarts": 1, "iterations": its, "seed": 1}
    _, t_ref, _ = attack(v, xc, nonc, "text", ref_p, f"kkt-reference 1 restart x {its} it", "kkt-reference")
    k1 = {"m": 40, "restarts": 1, "iterations": its * 10, "rungs": 0}
    _, t_k1, _ = attack(v, xc, nonc, "text", k1, f"kkt 1 restart x {its * 10} it")
    k1off = {**k1, "subspace": "off"}
    _, t_k1off, _ = attack(v, xc, nonc, "text", k1off, f"kkt 1 restart x {its * 10} it, full input space")
    say(f"  it/s full input space (no row-space coordinates): {its * 10 / t_k1off:.1f} = "
        f"{its * 10 / t_k1off / (its / t_ref):.1f}x the reference")
    k16 = {"m": 40, "restarts": 16, "iterations": its * 2, "rungs": 0}
    _, t_k16, _ = attack(v, xc, nonc, "text", k16, f"kkt 16 batched restarts x {its * 2} it")
    k64 = {**k16, "dtype": "float64"}
    _, t_k64, _ = attack(v, xc, nonc, "text", k64, f"kkt float64 16 restarts x {its * 2} it")
    r_ref, r_k1 = its / t_ref, its * 10 / t_k1
    say(f"  it/s: reference {r_ref:.2f} | kkt (1 restart) {r_k1:.1f} = {r_k1 / r_ref:.0f}x | kkt restart-it/s "
        f"(16 batched) {16 * its * 2 / t_k16:.1f} = {16 * its * 2 / t_k16 / r_ref:.0f}x | float64 batched "
        f"{16 * its * 2 / t_k64 / r_ref:.0f}x")
    ref_budget = minutes * 60
    say(f"  time-to-quality: reference for {ref_budget:.0f}s (published random search), kkt for a tenth of it")
    sr, tr, _ = attack(v, xc, nonc, "text", {"m": 40, "restarts": 1000, "iterations": 2000,
                                             "time_budget_s": ref_budget}, "kkt-reference", "kkt-reference")
    sk, tk, _ = attack(v, xc, nonc, "text", {**KKT_DEFAULT, "time_budget_s": ref_budget / 10}, "kkt (1/10 time)")
    say(f"  members passing 1%-FPR: reference {sr['good']} in {tr:.0f}s; kkt {sk['good']} in {tk:.0f}s "
        f"({tk / tr:.2f} of the reference's time); mean best cos {sr['mean_best']:.3f} vs {sk['mean_best']:.3f}")


def case_trend(minutes):
    say("== trend: members passing 1%-FPR (text) vs n per class, width, weight decay")
    for n in (10, 20, 50):
        for hidden, wd in [((1000,), 1e-3), ((1000,), 0.0), ((300,), 1e-3)]:
            x, y, non = sst2_embeddings(n, 400)
            say(f"  n/class {n} hidden {hidden} wd {wd}")
            v, xc, nonc = victim_for(x, y, 2, recipe(hidden, wd=wd), "sphere", non)
            attack(v, xc, nonc, "text", {**KKT_DEFAULT, "m": 4 * n, "time_budget_s": minutes * 60}, "kkt")


CASES = {"text": case_text, "pixels": case_pixels, "multiclass": case_multiclass, "speed": case_speed,
         "trend": case_trend}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", default="all", choices=[*CASES, "all"])
    ap.add_argument("--minutes", type=float, default=3.0, help="attack wall-clock budget per victim")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is far faster on a busy 2-core box)")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    if shared_data() is None:
        say("bench/attack.py: ../shared/data not found (set RECON_SHARED_DATA); skipping")
        return 0
    torch.manual_seed(0)
    np.random.seed(0)
    for name, fn in CASES.items():
        if a.case in (name, "all"):
            t = time.perf_counter()
            fn(a.minutes)
            say(f"   ({name} took {time.perf_counter() - t:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
