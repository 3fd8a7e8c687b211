"""Benchmark of issue 3's targets: quality, speed ratios and trends of the `kkt` attack.

    python bench/attack.py [--case recipes|text|pixels|multiclass|speed|trend|identify|all] [--minutes N]
                           [--null-minutes N] [--trend-ns 10,20,50] [--speed-m 40] [--speed-rounds 3]

Every figure is measured in this run, side by side; ratios compare runs made here, now. Victims are built as `run`
builds them; the attack's set-up and scoring are this bench's own (docs/attack.md, "Controls"; bench/recipes.py goes
through the pipeline's stages).
Skips (exit 0) where ../shared/data (or $RECON_SHARED_DATA) is absent.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's harness, not an installed one
sys.path.insert(0, str(Path(__file__).resolve().parent))
warnings.filterwarnings("ignore")

from attack_data import cifar_pixels, shared_data, sst2_embeddings  # noqa: E402
from recipes import PIXEL_HEAD  # noqa: E402

from harness.attacks import make_attack, precision  # noqa: E402
from harness.diagnostics.identifiability import check as ident_check  # noqa: E402
from harness.errors import HarnessError  # noqa: E402
from harness.scoring.embedding import match  # noqa: E402
from harness.scoring.pixels import match_pixels  # noqa: E402
from harness.specs.task import HeadRecipe  # noqa: E402
from harness.victims.build import VictimData, attack_view, build_victim  # noqa: E402
from harness.victims.spec import VictimSpec  # noqa: E402


# Head recipes for the `paper` trainer. Small init + weight decay, trained to a stationary
# point: the attack needs theta = sum lambda grad Phi, i.e. a small oracle residual.
def recipe(hidden=(1000,), wd=1e-3, init=1e-3, steps=3000, loss="logistic", lr=1e-3, optimizer="adam"):
    return HeadRecipe(widths=list(hidden), bias="first", init_scale=init, loss=loss, optimizer=optimizer, lr=lr,
                      weight_decay=wd, max_steps=steps, target_loss=1e-4, grad_tol=1e-6)


# Pixel inputs have norm ~28 (embeddings: 1). Adam at a constant lr 1e-3 hovers (every weight moves
# ~lr per step) and stopped at an oracle residual of 0.77; plain full-batch GD with a large step
# settles: the slow direction is the weight decay's (rate ~ lr * wd per step). The pixel victims use the
# benches' one pixel GD recipe, bench/recipes.py PIXEL_HEAD (lr 0.5 x 6000 steps; lr 1.0 x 3000 diverged on some draws).
# GD at lr 1.0 diverged (NaN) on the 4-class CE head (softmax curvature is up to twice the logistic one): lr 0.2
MULTICLASS_RECIPE = dict(optimizer="gd", lr=0.2, steps=3000)
# kkt settings for pixel victims (data-free choices; see the report for how they were picked)
PIXEL_KKT: dict = {"brackets": 100}  # rounds of 16 restarts until the time budget ends; later rounds reuse good lrs

# init rows: these cases hand the attack every non-member as public data and score on the same ones, so
# public starts (kkt's auto on pixels) would rest on the control (the pipeline splits them: stages.start_pool)
KKT_DEFAULT = {"m": 40, "restarts": 16, "iterations": 1500, "rungs": 3, "subspace": "auto", "init": "rows"}
NULLS = ("disjoint", "shuffled", "untrained")
ACTIVE_NULLS = list(NULLS)  # --nulls
NULL_MEANING = {"disjoint": "same recipe, shuffled labels, trained on a disjoint draw: never saw the members",
                "shuffled": "trained on shuffled labels of the members: a random-label victim, it memorises them too",
                "untrained": "left at its initialisation: weights never saw the data"}


def say(*a):
    print(*a, flush=True)


def victim_for(x, y, classes, rec, prior, nonmembers, null=None):
    """Build and train a victim (null: None, 'disjoint', 'shuffled' or 'untrained'); print its
    stationarity. For 'disjoint', (x, y) is the disjoint draw; the head is trained on its shuffled labels."""
    t = time.perf_counter()
    mode = "shuffled" if null == "disjoint" else null  # (x, y) is already the disjoint draw
    data = VictimData(x, y, classes, nonmembers[:0], y[:0], l2=prior == "sphere")
    tv = build_victim(VictimSpec(), rec, data, 0, "null" if null else "real", mode)
    rep, xc, nonc = tv.report, tv.frame.apply(x), tv.frame.apply(nonmembers)
    v = attack_view(tv, rec, classes, prior, float(nonc.norm(dim=1).mean()), nonc)  # public data: norm estimate, starts
    orc, act = tv.oracle_residual, tv.active_share
    own = "" if tv.own_pattern is None else f", {tv.own_pattern} of {len(x)} training rows with an activation pattern of their own"
    tag = {None: "REAL", "shuffled": "NULL shuffled-labels", "untrained": "NULL untrained",
           "disjoint": "NULL disjoint-draw"}[null]
    say(f"  victim {tag} {v.head.dims}: built in {time.perf_counter() - t:.0f}s, {rep.steps} steps "
        f"(stopped by {rep.stopped_by}), train loss {rep.final_loss:.1e}, objective grad norm {rep.grad_norm:.1e}, "
        f"train acc {rep.train_acc:.2f}, oracle residual {orc:.3g} (members' best ||theta - J lam||^2/||theta||^2, "
        f"lam>=0, on its own training labels; ~0 = stationary), active units/member {float(act):.2f}{own}")
    return v, xc, nonc


def score(space, res, xc, nonc, v):
    if space == "pixels":
        s = match_pixels(res.candidates, xc, nonc, v.mean)
        return {"ssim>0.4": f"{s.good}/{len(xc)}", "good_frac": s.good_fraction,
                "non_good_frac": s.nonmember_good_fraction, "tpr@1%fpr": s.tpr, "thr": s.threshold,
                "mean_best": float(s.member_best.mean()), "non_mean": float(s.nonmember_best.mean())}
    s = match(res.candidates, xc, nonc)
    return {"tpr@1%fpr": s.tpr, "thr": s.threshold, "pass": int((s.member_best > s.threshold).sum()),
            "cos>0.8": int((s.member_best > 0.8).sum()), "cos>0.9": int((s.member_best > 0.9).sum()),
            "mean_best": float(s.member_best.mean()), "non_mean": float(s.nonmember_best.mean())}


SCORE_MEANING = {
    "text": "tpr@1%fpr = members whose best candidate cosine beats the threshold (thr) that 1% of the non-members "
            "pass; pass = their count; cos>0.8 / cos>0.9 = members with a candidate that close (the honest "
            "'reconstructed' bar); mean_best / non_mean = mean best cosine of members / non-members",
    "pixels": "ssim>0.4 = members with a good reconstruction (Haim/Buzaglo rule), good_frac its fraction, "
              "non_good_frac = fraction of non-members that pass SSIM>0.4 too (chance level); tpr@1%fpr = members "
              "above the SSIM that 1% of non-members reach (thr; when thr is far below 0.4, as on the untrained null, "
              "tpr counts noise-level matches: read ssim>0.4 there); mean_best / non_mean = mean best SSIM",
}


def fmt(sc):
    return " ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in sc.items())


def attack(v, xc, nonc, space, params, label, name="kkt", frame=None, quiet=False):
    """Attack v; score its candidates against members xc / non-members nonc. `frame` is the victim
    whose centring xc and nonc use, when v subtracted another mean (the disjoint null). `quiet`: no line."""
    t = time.perf_counter()
    res = make_attack(name, params).reconstruct(v, progress=False)
    wall = time.perf_counter() - t
    if not len(res.candidates):
        raise SystemExit(f"error: {label}: no restart finished within the attack's budget ({wall:.0f} s); "
                         "give it more time (--minutes / --null-minutes)")
    if frame is not None:
        res.candidates = res.candidates + (v.mean - frame.mean)
    sc = score(space, res, xc, nonc, frame or v)
    best = min((r.final_loss for r in res.runs if r.status == "ok"), default=float("nan"))
    if not quiet:
        say(f"    {label}: attack {wall:.0f}s, runs {len(res.runs)}, candidates {len(res.candidates)}, "
            f"best relative KKT residual {best:.3g} | {fmt(sc)}")
    return sc, wall, res


def identifiability(v, xc, y, noises=(0.3,)):
    """Planted check: kkt (1500 it, 4 restarts, full space) from the members + noise, against 8
    restarts from scratch that mix sgd-momentum and adam over a wide lr range (the search that reached
    the lowest losses on the text heads). A planted start that ends far from its member at a loss as
    low as the closer ones means the loss's minima form a continuum: mixtures fit as well as members."""
    for noise in noises:
        t = time.perf_counter()
        r = ident_check(v, xc, y, {"iterations": 1500, "subspace": "off", "lr": 3e-3, "optimizer": "adam"}, noise=noise,
                        scratch_params={"restarts": 8, "lr": None, "lr_range": (1e-3, 1e-1), "optimizer": "mixed",
                                        "init": "subspace", "subspace": "auto"})
        say(f"    identifiability ({time.perf_counter() - t:.0f}s): started at the members + {noise:.0%} noise (cos "
            f"{r.start_cos:.2f}) the attack ends at mean cos {r.end_cos:.2f}, {r.end_good}/{len(xc)} members still > 0.8, "
            f"loss {r.planted_loss:.2g}; from scratch: loss {r.scratch_loss:.2g}, members' best cos {r.scratch_best_cos:.2f} "
            f"-> the loss {'ranks the planted runs below' if r.loss_separates else 'does NOT rank the planted runs below'} "
            "what search finds")


def real_and_nulls(x, y, classes, rec, prior, non, space, budget, null_budget, disjoint):
    """Attack the real victim and the null victims with the same recipe and attack, all scored
    against the real members. `disjoint` = (x2, y2), the disjoint null's training draw."""
    rows = {}
    v, xc, nonc = victim_for(x, y, classes, rec, prior, non)
    rows["REAL"] = attack(v, xc, nonc, space, budget, f"kkt on REAL victim {budget}")[0]
    identifiability(v, xc, y)
    for mode in ACTIVE_NULLS:
        data = disjoint if mode == "disjoint" else (x, y)
        nv, _, _ = victim_for(*data, classes, rec, prior, non, null=mode)
        rows[f"NULL {mode}"] = attack(nv, xc, nonc, space, null_budget,
                                      f"kkt on NULL {mode} victim ({NULL_MEANING[mode]})", frame=v)[0]
    keys = ["tpr@1%fpr", "cos>0.8", "cos>0.9", "mean_best"] if space == "text" else \
        ["ssim>0.4", "good_frac", "non_good_frac", "tpr@1%fpr", "mean_best"]
    say(f"  side by side ({SCORE_MEANING[space]}):")
    say("    " + f"{'victim':<16}" + "".join(f"{k:>14}" for k in keys))
    for name, sc in rows.items():
        say("    " + f"{name:<16}" + "".join(f"{sc[k]:>14.3f}" if isinstance(sc[k], float) else f"{sc[k]:>14}"
                                            for k in keys))
    return rows


def case_text(minutes, null_minutes, hidden_list=((1000,), (1000, 1000))):
    say("== text: MiniLM/SST-2, binary, 10 members/class, 400 non-members")
    x, y, non, x2, y2 = sst2_embeddings(10, 400, disjoint=True)
    out = {}
    for hidden in hidden_list:
        budget = {**KKT_DEFAULT, "time_budget_s": minutes * 60}
        out[hidden] = real_and_nulls(x, y, 2, recipe(hidden), "sphere", non, "text", budget,
                                     {**budget, "time_budget_s": null_minutes * 60}, (x2, y2))
    return out


def case_pixels(minutes, null_minutes, kkt=None):
    say("== pixels: CIFAR-10 automobile vs cat, 10/class, 3072-1000-1, 400 non-members")
    say(f"  victim recipe: {PIXEL_HEAD.optimizer} lr {PIXEL_HEAD.lr:g} x {PIXEL_HEAD.max_steps} steps, init {PIXEL_HEAD.init_scale:g}, "
        f"weight decay {PIXEL_HEAD.weight_decay:g} (inputs in [-1,1] minus the member mean)")
    x, y, non, x2, y2 = cifar_pixels([1, 3], 10, 400, disjoint=True)
    budget = {**KKT_DEFAULT, **(kkt or PIXEL_KKT), "time_budget_s": minutes * 60}
    return real_and_nulls(x, y, 2, PIXEL_HEAD, "box", non, "pixels", budget,
                          {**budget, "time_budget_s": null_minutes * 60}, (x2, y2))


def case_multiclass(minutes, null_minutes):
    say("== multiclass: CIFAR-10 4 classes (airplane, automobile, cat, horse) x 5, 3072-1000-4, CE")
    x, y, non, x2, y2 = cifar_pixels([0, 1, 3, 7], 5, 400, disjoint=True)
    budget = {**KKT_DEFAULT, **PIXEL_KKT, "time_budget_s": minutes * 60}
    say(f"  victim recipe: {MULTICLASS_RECIPE}, init 1e-3, weight decay 1e-3")
    head = recipe((1000,), loss="ce", **MULTICLASS_RECIPE)
    try:
        v, xc, nonc = victim_for(x, y, 4, head, "box", non)
    except HarnessError as exc:  # the victim's training diverged (build_victim says so in one line): no attack
        say(f"  {exc}; no attack")
        return
    attack(v, xc, nonc, "pixels", budget, f"kkt on REAL victim {budget}")
    if "disjoint" in ACTIVE_NULLS:
        nv, _, _ = victim_for(x2, y2, 4, head, "box", non, null="disjoint")
        attack(nv, xc, nonc, "pixels", {**budget, "time_budget_s": null_minutes * 60},
               f"kkt on NULL disjoint victim ({NULL_MEANING['disjoint']})", frame=v)
    say(f"  ({SCORE_MEANING['pixels']})")


def case_speed(minutes, null_minutes=None, m=40, rounds=3):
    say(f"== speed: same victim (MiniLM/SST-2 384-1000-1, n=20), same m={m}, side by side, {rounds} interleaved rounds")
    say("  each as it runs by default: kkt-reference is the published loop (float64, autograd, SGD), kkt runs float32;"
        " the last line is kkt at the reference's float64 (like for like in precision)")
    x, y, non = sst2_embeddings(10, 400)
    v, xc, nonc = victim_for(x, y, 2, recipe((1000,)), "sphere", non)
    its = max(5, 200 * 40 // m)  # the same work per measurement at every m
    ref_its = max(24, its)  # at least ~3 s of the reference at m = 1000 (8 iterations moved its rate by 1.4x)
    ref_p = {"m": m, "restarts": 1, "iterations": ref_its, "seed": 1}
    k1 = {"m": m, "restarts": 1, "iterations": its * 10, "rungs": 0, "compile": "off"}
    # batched: at least 80 iterations, so that each restart's start (its lambda fit: two full-precision passes)
    # weighs as little as in the single-restart runs (at m = 1000, 16 iterations spent ~a quarter of the time there)
    b_its = max(its * 2, 80)
    k16 = {"m": m, "restarts": 16, "iterations": b_its, "rungs": 0, "compile": "off"}
    variants = {"": {"compile": "off"}, " compiled": {"compile": "on"},
                " compiled, reduced products": {"compile": "on", "products": "reduced"}}
    if not precision.reduced_is_fast(torch.device("cpu")):  # emulated bfloat16: slower than full, not a speed option here
        del variants[" compiled, reduced products"]
        say("  (this CPU has neither AMX nor AVX512-BF16: the reduced-products variant is left out)")
    # every side's first call (allocations, kernels chosen, compilation) outside the timed runs, not only the compiled
    make_attack("kkt-reference", {**ref_p, "iterations": 3}).reconstruct(v, progress=False)
    for p in (k1, {**k1, "subspace": "off"}, k16):
        make_attack("kkt", {**p, "iterations": 3}).reconstruct(v, progress=False)
    for tag, how in variants.items():
        if how["compile"] == "on":  # compile outside the timed runs: a run long enough for `auto` pays it once
            t0 = time.perf_counter()
            for p in (k1, {**k1, "subspace": "off"}, k16):
                make_attack("kkt", {**p, **how, "iterations": 3}).reconstruct(v, progress=False)
            say(f"  compiling the pass{tag.removeprefix(' compiled')} (3 shapes): {time.perf_counter() - t0:.0f}s")
    # each round times the reference and then every variant, so a ratio pairs runs a few seconds apart and
    # the rounds show how far the machine's load moves it
    ratios = {tag: {"off": [], "k1": [], "k16": []} for tag in variants}
    refs = []
    for rnd in range(rounds):
        quiet = rnd > 0
        _, t_ref, _ = attack(v, xc, nonc, "text", ref_p, f"kkt-reference 1 restart x {ref_its} it", "kkt-reference", quiet=quiet)
        refs.append(ref_its / t_ref)
        for tag, how in variants.items():
            runs = {"k1": ({**k1, **how}, f"kkt{tag} 1 restart x {its * 10} it", its * 10),
                    "off": ({**k1, "subspace": "off", **how}, f"kkt{tag} 1 restart x {its * 10} it, full input space", its * 10),
                    "k16": ({**k16, **how}, f"kkt{tag} 16 batched restarts x {b_its} it", 16 * b_its)}
            for key, (p, label, work) in runs.items():
                _, t, _ = attack(v, xc, nonc, "text", p, label, quiet=quiet)
                ratios[tag][key].append(work / t / refs[-1])
    _, t_k64, _ = attack(v, xc, nonc, "text", {**k16, "dtype": "float64"}, f"kkt float64 16 restarts x {b_its} it")
    say(f"  reference it/s per round: {', '.join(f'{r:.2f}' for r in refs)}; ratios below: median [min-max] over the rounds")
    for tag in variants:
        rs = ratios[tag]
        say(f"  kkt{tag or ' (eager)'}: full input space (no row-space coordinates) {_spread(rs['off'])} | "
            f"1 restart {_spread(rs['k1'])} | restart-it/s 16 batched {_spread(rs['k16'])}  (targets: 5x single, 10x batched)")
    say(f"  float64 batched (eager): {16 * b_its / t_k64 / refs[-1]:.1f}x")
    if m != 40:  # the time-to-quality comparison is defined at the bench's own budget (m = 40)
        return
    ref_budget = minutes * 60
    say(f"  time-to-quality: reference for {ref_budget:.0f}s (published random search), kkt for a tenth of it")
    sr, tr, _ = attack(v, xc, nonc, "text", {"m": 40, "restarts": 1000, "iterations": 2000,
                                             "time_budget_s": ref_budget}, "kkt-reference", "kkt-reference")
    sk, tk, _ = attack(v, xc, nonc, "text", {**KKT_DEFAULT, "time_budget_s": ref_budget / 10}, "kkt (1/10 time)")
    say(f"  members passing 1%-FPR: reference {sr['pass']} in {tr:.0f}s; kkt {sk['pass']} in {tk:.0f}s "
        f"({tk / tr:.2f} of the reference's time); mean best cos {sr['mean_best']:.3f} vs {sk['mean_best']:.3f}")


def _spread(xs) -> str:
    """median [min-max] of ratios, as 'N.Nx [a-b]'."""
    xs = sorted(xs)
    return f"{statistics.median(xs):.1f}x [{xs[0]:.1f}-{xs[-1]:.1f}]"


def case_trend(minutes, null_minutes, ns=(10, 20, 50)):
    say("== trend: text (MiniLM/SST-2), members reconstructed vs n per class, head width, weight decay")
    say(f"   each victim gets {minutes:.1f} min of kkt (m = 4 x members per class = 2 x members in all, per restart); "
        "pass = members beating the 1%-FPR cosine threshold, cos>0.8 = members with a candidate at cosine > 0.8")
    rows = []
    for n in ns:
        x, y, non = sst2_embeddings(n, 400)
        for hidden, wd in [((1000,), 1e-3), ((1000,), 0.0), ((300,), 1e-3)]:
            say(f"  n/class {n} hidden {hidden} wd {wd}")
            v, xc, nonc = victim_for(x, y, 2, recipe(hidden, wd=wd), "sphere", non)
            sc = attack(v, xc, nonc, "text", {**KKT_DEFAULT, "m": 4 * n, "time_budget_s": minutes * 60}, "kkt")[0]
            rows.append((2 * n, hidden, wd, sc))
    say("  trend table (n = members in all):")
    say(f"    {'n':>4} {'hidden':>10} {'wd':>7} {'pass':>6} {'tpr':>6} {'cos>0.8':>8} {'cos>0.9':>8} {'mean_best':>10}")
    for n, hidden, wd, sc in rows:
        say(f"    {n:>4} {str(hidden):>10} {wd:>7.0e} {sc['pass']:>6} {sc['tpr@1%fpr']:>6.2f} {sc['cos>0.8']:>8} "
            f"{sc['cos>0.9']:>8} {sc['mean_best']:>10.3f}")


def case_identify(minutes=None, null_minutes=None):
    say("== identifiability: does the KKT loss single out the members? (planted start vs. search from scratch)")
    x, y, non = sst2_embeddings(10, 400)
    for hidden in ((1000,), (1000, 1000)):
        v, xc, _ = victim_for(x, y, 2, recipe(hidden), "sphere", non)
        identifiability(v, xc, y, noises=(0.3, 0.6, 1.0))
    x, y, non = cifar_pixels([1, 3], 10, 400)
    v, xc, _ = victim_for(x, y, 2, PIXEL_HEAD, "box", non)
    identifiability(v, xc, y)


def case_recipes(minutes=None, null_minutes=None):
    """Victim recipes x data (bench/recipes.py with its defaults): which heads leak, measured side by side."""
    import recipes

    recipes.main(["--scale", "--threads", str(torch.get_num_threads())])  # --threads as given; its own budgets


CASES = {"recipes": case_recipes, "text": case_text, "pixels": case_pixels, "multiclass": case_multiclass, "speed": case_speed,
         "trend": case_trend, "identify": case_identify}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", default="all", choices=[*CASES, "all"])
    ap.add_argument("--minutes", type=float, default=3.0, help="attack wall-clock budget per victim")
    ap.add_argument("--null-minutes", type=float, default=None, help="attack budget per null victim (default --minutes)")
    ap.add_argument("--trend-ns", default="10,20,50", help="members per class in the trend grid")
    ap.add_argument("--speed-m", type=int, default=40, help="candidates per restart in the speed case")
    ap.add_argument("--speed-rounds", type=int, default=3, help="interleaved rounds of the speed case (ratios: median, range)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is far faster on a busy 2-core box)")
    ap.add_argument("--nulls", default=",".join(NULLS), help=f"null victims to attack, from {','.join(NULLS)}")
    a = ap.parse_args(argv)
    bad = [k for k in a.nulls.split(",") if k and k not in NULLS]
    if bad:
        ap.error(f"--nulls: unknown {bad}; choose from {','.join(NULLS)}")
    ACTIVE_NULLS[:] = [k for k in a.nulls.split(",") if k]
    torch.set_num_threads(a.threads)
    if shared_data() is None:
        say("bench/attack.py: ../shared/data not found (set RECON_SHARED_DATA); skipping")
        return 0
    torch.manual_seed(0)
    np.random.seed(0)
    # flags a case does not read are said to be unused, not silently dropped
    unused = {"recipes": "--minutes, --null-minutes and --nulls (bench/recipes.py's own budgets and disjoint nulls)",
              "identify": "--minutes, --null-minutes and --nulls (the planted check's own iterations)",
              "speed": "--null-minutes and --nulls" if a.speed_m == 40 else
                       "--minutes, --null-minutes and --nulls (its time-to-quality part, which --minutes sets, runs at m = 40 only)"}
    for name, fn in CASES.items():
        if a.case in (name, "all") and name in unused:
            say(f"   ({name}: does not use {unused[name]})")
        if a.case in (name, "all"):
            t = time.perf_counter()
            nm = a.minutes if a.null_minutes is None else a.null_minutes
            if name == "trend":
                fn(a.minutes, nm, tuple(int(k) for k in a.trend_ns.split(",")))
            elif name == "speed":
                fn(a.minutes, nm, a.speed_m, a.speed_rounds)
            else:
                fn(a.minutes, nm)
            say(f"   ({name} took {time.perf_counter() - t:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
