"""Selection ablation: the clustering's data-free refinements, measured on independent attacks.

    .venv/bin/python bench/selection.py [--seconds 90] [--threads 1] [--classes 1,3]

One CIFAR-10 pixel victim (automobile vs cat unless --classes names two other class indices, 10 per class,
3072-1000-1, the victim of bench/attack.py), attacked six times with different seeds and settings. Each pool of candidates
is ranked several ways and scored against the members at the 1%-FPR cosine threshold:
  default         min_cosine 0.7, runs within 10x the best KKT loss pooled, clusters weighed by their λ
  no λ weighing   confidence by recurrence x tightness alone (the default before 2026-12-07)
  no loss filter  every run pooled (the earlier default)
  +suppress 0.7   near-duplicates (cosine > 0.7 to a better representative) ranked last
  +cos 0.8        clusters cut at cosine 0.8
  lowest-loss     candidates in order of their run's KKT loss (the naive baseline)
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's harness, not an installed one
sys.path.insert(0, str(Path(__file__).resolve().parent))
warnings.filterwarnings("ignore")

from attack import KKT_DEFAULT, victim_for  # noqa: E402
from recipes import PIXEL_HEAD  # noqa: E402
from attack_data import cifar_pixels, shared_data  # noqa: E402

from harness.attacks import make_attack  # noqa: E402
from harness.scoring.embedding import match  # noqa: E402
from harness.select import lowest_loss_order, score_selection, select_candidates  # noqa: E402

POOLS = {  # attack settings of each independent pool (everything else: bench/attack.py's pixel kkt)
    "seed 0": {"seed": 0},
    "alpha 60": {"alpha_start": 60.0, "alpha_end": 60.0, "seed": 1},
    "lambda_min 0.2": {"lambda_min": 0.2, "seed": 3},
    "random init": {"init": "random", "seed": 4},
    "seed 5": {"seed": 5},
    "lambda_min 0.5": {"lambda_min": 0.5, "seed": 6},
}
VARIANTS = {  # name -> select_candidates settings on top of the defaults; "lowest-loss" is the baseline
    "default": {},
    "no λ weighing": {"weigh_lambda": False},
    "no loss filter": {"loss_factor": None},
    "+suppress 0.7": {"suppress_cosine": 0.7},
    "+cos 0.8": {"min_cosine": 0.8},
}
NAMES = [*VARIANTS, "lowest-loss"]


def rankings(res, xc, thr):
    losses = {r.run_id: r.final_loss for r in res.runs}
    out = {}
    for name, kw in VARIANTS.items():
        sel = select_candidates(res.candidates, res.run_ids, losses, res.lambdas, **kw)
        out[name] = score_selection(res.candidates[sel.rep_index], xc, thr)
    finite = torch.isfinite(res.candidates).all(1).numpy()
    order = lowest_loss_order(res.run_ids, losses, res.lambdas, finite)
    out["lowest-loss"] = score_selection(res.candidates[order], xc, thr)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=90.0, help="attack budget per pool")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--classes", default="1,3", help="two CIFAR-10 class indices, A,B (default 1,3: automobile vs cat)")
    a = ap.parse_args(argv)
    parts = a.classes.split(",")
    if len(parts) != 2 or len(set(parts)) != 2 or not all(c.isdigit() and int(c) < 10 for c in parts):
        print(f"bench/selection.py: --classes {a.classes!r}: give two different CIFAR-10 class indices 0-9, e.g. 1,3",
              file=sys.stderr)
        return 2
    torch.set_num_threads(a.threads)
    if shared_data() is None:
        print("bench/selection.py: ../shared/data not found (set RECON_SHARED_DATA); skipping")
        return 0
    torch.manual_seed(0)
    x, y, non = cifar_pixels([int(c) for c in parts], 10, 400)
    v, xc, nonc = victim_for(x, y, 2, PIXEL_HEAD, "box", non)
    table = {}
    for name, extra in POOLS.items():
        t = time.perf_counter()
        params = {**KKT_DEFAULT, "brackets": 100, "time_budget_s": a.seconds, **extra}
        res = make_attack("kkt", params).reconstruct(v, progress=False)
        s = match(res.candidates, xc, nonc)
        table[name] = rankings(res, xc, s.threshold)
        ok = sum(r.status == "ok" for r in res.runs)
        print(f"  pool {name:<15} attack {time.perf_counter() - t:.0f}s, {ok} ok runs, {len(res.candidates)} candidates, "
              f"TPR@1%FPR {s.tpr:.2f} (cosine threshold {s.threshold:.2f})", flush=True)
    print("\n  top-k precision (distinct members above the threshold / k), P@10 / P@20 / P@50:")
    print(f"    {'pool':<15}" + "".join(f"{k:>16}" for k in NAMES))
    for name, row in table.items():
        print(f"    {name:<15}" + "".join(f"{'/'.join(f'{row[k].precision[j]:.2f}' for j in (10, 20, 50)):>16}" for k in NAMES))
    means = {k: {j: np.mean([row[k].precision[j] for row in table.values()]) for j in (10, 20, 50)}
             for k in NAMES}
    print(f"    {'mean':<15}" + "".join(f"{'/'.join(f'{means[k][j]:.2f}' for j in (10, 20, 50)):>16}" for k in NAMES))
    for j in (10, 20):
        base = means["lowest-loss"][j]
        print(f"  P@{j}: default {means['default'][j]:.2f} = x{means['default'][j] / base:.2f} the lowest-loss baseline "
              f"(target for P@20: >= 0.8 and >= x1.5)" if base > 0 else f"  P@{j}: baseline 0")
    return 0


if __name__ == "__main__":
    sys.exit(main())
