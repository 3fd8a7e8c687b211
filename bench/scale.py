"""Reconstruction at the papers' training-set sizes, and what the attack costs as n grows.

    python bench/scale.py [--part table,cost] [--cases pixels,text] [--ns 20,50,100] [--seconds-per-member 36]
                          [--null-share 1.0] [--cost-ms 40,100,200,500,1000] [--cost-restarts 1,16] [--devices cpu]
                          [--cost-products full,reduced] [--cost-compile auto,on]
                          [--pixel-optimizer gd|lbfgs] [--pixel-steps N] [--pixel-schedule constant|cosine]
                          [--pixel-classes 1,3] [--text-data sst2]

table: per case and n (members in all, half per class) one victim built by the harness's victim builder
  (bench/recipes.py: pixels = CIFAR-10 automobile vs cat (--pixel-classes), identity backbone, 3072-1000-1,
  none+paper with full-batch GD, lr 0.5 for 6000 steps, or --pixel-optimizer lbfgs; text = MiniLM / SST-2 (--text-data), 384-1000-1, standardize+paper) and its disjoint null,
  each attacked by the harness's attack stage with m = max(2n, the case's m) candidates and a budget of a fixed number of
  seconds per member; it prints members reconstructed (SSIM > 0.4 / cosine > 0.8), TPR@1%FPR, the null,
  seconds and peak memory (RSS, or CUDA max allocated where the attack runs on a GPU).
cost: the attack's time per iteration and peak memory as m grows, on a 3072-1000-1 head with the box
  prior (the pixel setting), per device, product precision, compile setting and number of restarts in one batch; and how they grow (the exponent a in time ~ m^a).
n = 250 and 500 are added to the default --ns where CUDA is present.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import get_args

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's harness, not an installed one
sys.path.insert(0, str(Path(__file__).resolve().parent))
warnings.filterwarnings("ignore")

import recipes  # noqa: E402
from peak_memory import PeakMemory  # noqa: E402

import harness.attacks.kkt_context as kkt_context  # noqa: E402
from harness.attacks import fused, make_attack, memory, precision  # noqa: E402
from harness.attacks.base import Victim  # noqa: E402
from harness.errors import HarnessError  # noqa: E402
from harness.heads.mlp import MLPHead  # noqa: E402
from harness.params import validated_params  # noqa: E402
from harness.victims.frame import Frame  # noqa: E402

CASES = {"pixels": "none+paper", "text": "standardize+paper"}  # each case's victim recipe
PIXEL_HEAD = recipes.PIXEL_HEAD  # one GD recipe for every n (lr 0.5 x 6000 steps: see bench/recipes.py)
LBFGS_STEPS = 300  # a pixel victim trained by L-BFGS (lr 1): 300 outer steps of up to 20 iterations
HAIM_N500 = ("Haim et al. 2022 trained binary CIFAR-10 MLPs on 500 images (250 per class) and report that a large "
             "portion of them can be reconstructed; docs/algorithms.md gives no count of their SSIM > 0.4 members")
TARGET = (100, 0.5, 60)  # issue 15, on a CPU: n = 100 pixels, >= 50% of members at SSIM > 0.4 within 60 minutes
say = recipes.say


def pixel_head(optimizer: str = "gd", steps: int | None = None, schedule: str = "constant"):
    """The pixel victims' head recipe: full-batch GD (PIXEL_HEAD; its step constant or cosine-decayed to 0) or
    L-BFGS to the same stationarity test."""
    if optimizer == "lbfgs":
        return PIXEL_HEAD.model_copy(update={"optimizer": "lbfgs", "lr": 1.0, "max_steps": steps or LBFGS_STEPS})
    return PIXEL_HEAD.model_copy(update={"max_steps": steps or PIXEL_HEAD.max_steps, "lr_schedule": schedule})


def budget(pixels: bool, n: int, seconds_per_member: float, share: float = 1.0) -> dict:
    """The bench's kkt settings (16 restarts x 1500 iterations per bracket, successive halving), brackets
    until n x seconds_per_member x share seconds have passed."""
    base = recipes.PIXEL_ATTACK if pixels else recipes.TEXT_ATTACK
    return {**base, "brackets": 10_000, "time_budget_s": n * seconds_per_member * share}


def row(case: str, n: int, seed: int, spm: float, null_share: float, pixel_head=PIXEL_HEAD, text_head=None,
        pixel_classes: str = "1,3", real_share: float = 1.0, attack: dict | None = None, planted: bool = False,
        text_data: str = "sst2") -> dict | None:
    recipe = CASES[case]
    pixels = case == "pixels"
    data = f"cifar:{pixel_classes}" if pixels else text_data
    d, why = recipes.load_or_skip(data, n // 2, seed)
    if d is None:
        say(f"  {case} n={n}: {why}")
        return None
    out = {"case": case, "n": n}
    for kind, share in (("real", real_share), ("null", null_share)):
        if share <= 0:  # no null victim (--null-share 0) or only the null (--real-share 0)
            continue
        try:
            v, head, train_s = recipes.victim(d, recipes.RECIPES[recipe], pixels, seed, kind, pixel_head if pixels else text_head)
        except HarnessError as exc:  # a victim whose training diverged: said in one line, no attack
            say(f"  {case} n={n} {kind}: {exc}; no attack")
            return None
        params = recipes.attack_params(pixels, n, seed, {**budget(pixels, n, spm, share), **(attack or {})})
        carried = "-" if v.effective_members is None else format(v.effective_members, ".0f")
        own = "" if v.own_pattern is None else f", {v.own_pattern} with an activation pattern of their own"  # ReLU heads only
        say(f"  {case} n={n} {kind}: trained in {train_s:.0f}s, carries {carried} of its {n} training rows, "
            f"{v.in_row_space} in W1's row space{own}; attacking for {params['time_budget_s']:.0f}s")
        with PeakMemory() as pm:
            r, res = recipes.attack_scored(v, head, d, pixels, params)
        work = sum(run.iterations for run in res.runs)
        out[kind] = {**r, "train_s": train_s, "peak_mib": pm.peak_mib, "extra_mib": pm.extra_mib, "mem": pm.kind,
                     "good": r["ssim04"] if pixels else r["cos08"], "tpr_": r["ssim_tpr"] if pixels else r["tpr"],
                     "beyond": r["beyond_ssim"] if pixels else r["beyond08"], "pub": r["pub_ssim"] if pixels else r["pub08"],
                     "work": work, "m": params["m"], "params": params, "runs": len(res.runs), "budget_s": params["time_budget_s"],
                     "device": res.runs[0].settings.get("device", "cpu") if res.runs else "-",
                     "compiled": any(run.settings.get("compiled") for run in res.runs), "recombine": res.params.get("recombine"),
                     "init": res.params.get("init")}
        o = out[kind]
        rec = f"{data} {recipe}" + (f" attack {attack}" if attack else "") + (f" {head.optimizer} lr {head.lr:g}{' cosine' if head.lr_schedule == 'cosine' else ''} x {v.report.steps} steps ({v.report.stopped_by}, "
                                    f"grad {v.report.grad_norm:.1e})" if v.report else "")
        say(f"  {case} n={n} {kind} [{rec}]: trained in {train_s:.0f}s (oracle residual {o['oracle']:.3g}, carried "
            f"{carried}/{n}, in W1 {o['in_w1']}/{n}, active {o['active'] or 0:.2f}, "
            f"test acc {o['test_acc']:.2f}); attack {o['attack_s']:.0f}s of {o['budget_s']:.0f}s on {o['device']}, m {o['m']}, "
            f"{o['runs']} restarts, {work} restart-iterations ({'compiled' if o['compiled'] else 'eager'} pass, recombine "
            f"{o['recombine']}, init {o['init']}), best residual {o['best_loss']:.3g}; "
            f"{o['good']}/{n} reconstructed ({o['beyond']} by a candidate closer than any public input; the public inputs alone "
            f"match {o['pub']}), TPR {o['tpr_']:.2f}; peak {pm.kind} {pm.peak_mib:.0f} MiB (+{pm.extra_mib:.0f})")
        if planted and kind == "real":
            t = time.perf_counter()
            o["planted"], pc, ratio = recipes.planted(v, head, d, pixels, params, seed, o["best_loss"], o["planted_its"])
            say(f"  {case} n={n} planted ({time.perf_counter() - t:.0f}s): started at the members + 30% noise (cos {pc.start_cos:.2f}) "
                f"beside {o['m'] - n} free candidates (m {o['m']}), "
                f"{o['planted_its']} iterations ({recipes.PLANTED_RUN}): {pc.end_good}/{n} still at cosine > 0.8 (mean cos {pc.end_cos:.2f}), that run's loss {pc.kept_loss:.3g} "
                f"against the search's best {o['best_loss']:.3g} (x{ratio:.1f}; the loss singles "
                f"the members out only below x1)")
    return out


def table(rows: list[dict], spm: float, null_share: float) -> None:
    null = f"{null_share:g} x that for the disjoint null" if null_share > 0 else "no null victim"
    say(f"== scale table: budget {spm:g} s per member for the real victim ({null}); "
        "reconstructed = members at SSIM > 0.4 (pixels) / cosine > 0.8 (text); TPR@1%FPR on SSIM (pixels) / cosine (text)")
    say(f"  {'n':>4} {'case':<7} {'m':>5} {'reconstructed':>14} {'beyond/pub':>10} {'TPR':>5} {'disjoint null':>16} {'attack s':>9} "
        f"{'train s':>8} {'restart-its':>12} {'peak MiB':>9} {'oracle':>7} {'residual':>9}")
    for r in rows:
        a, b = r["real"], r.get("null")
        null = f"{b['good']:>3}/{r['n']:<3} TPR {b['tpr_']:.2f}" if b else f"{'not run':>16}"
        say(f"  {r['n']:>4} {r['case']:<7} {a['m']:>5} {a['good']:>5}/{r['n']:<3} {a['good'] / r['n']:>4.0%} "
            f"{str(a['beyond']) + ' / ' + str(a['pub']):>10} {a['tpr_']:>5.2f} "
            f"{null} {a['attack_s']:>9.0f} {a['train_s']:>8.0f} {a['work']:>12} "
            f"{a['peak_mib']:>9.0f} {a['oracle']:>7.3f} {a['best_loss']:>9.3g}")
    say("  beyond/pub: members reconstructed by a candidate closer to them than any public input (the attacker holds those), "
        "and members the public inputs alone match at the same rule")
    say(f"  peak MiB: {rows[0]['real']['mem'] if rows else '-'} during the real victim's attack and scoring "
        "(the process's, so it includes the loaded data)")
    for r in rows:
        if r["case"] == "pixels" and r["n"] == 500:
            say(f"  n = 500 pixels: {r['real']['good']}/500 members at SSIM > 0.4 here | published: {HAIM_N500}")
    n_t, share_t, minutes_t = TARGET
    for r in rows:
        if r["case"] == "pixels" and r["n"] == n_t and r["real"]["device"] == "cpu":
            a = r["real"]
            ok = a["good"] / r["n"] >= share_t and a["attack_s"] <= minutes_t * 60 * 1.02
            strict = a["beyond"] is not None and a["beyond"] / r["n"] >= share_t and ok
            say(f"  target (CPU, n = {n_t} pixels, >= {share_t:.0%} at SSIM > 0.4 within {minutes_t} min): "
                f"{a['good']}/{r['n']} in {a['attack_s'] / 60:.1f} min -> {'reached' if ok else 'UNREACHED'}; counting only "
                f"members matched closer than by any public image: {a['beyond']}/{r['n']} -> {'reached' if strict else 'UNREACHED'}")


def cost_victim(seed: int = 0) -> Victim:
    """A 3072-1000-1 head in the pixel setting (box prior); its weights do not change the cost."""
    torch.manual_seed(seed)
    head = MLPHead([3072, 1000, 1])
    return Victim(head=head, loss="logistic", num_classes=2, frame=Frame(torch.zeros(3072)), prior="box")


def cost_point(m: int, restarts: int, seconds: float, dev: str, seed: int = 0, products: str = "full",
               compile: str = "auto") -> dict:
    """One (device, m) point in this process: a 3-iteration run (CUDA's context and kernels load there; a
    compiled pass compiles there, and a second such run times the compiled iterations) sets the iterations
    that take about `seconds` (at least 3); then the loop's seconds per iteration and the peak memory of that
    run. `products`: kkt's product precision (full, reduced); `compile`: kkt's compile setting (off, on, auto)."""
    v = cost_victim(seed)
    params = {"m": m, "restarts": restarts, "iterations": 3, "rungs": 0, "init": "random", "device": dev, "seed": seed,
              "products": products, "compile": compile}
    probe = make_attack("kkt", params).reconstruct(v, progress=False).runs[0]
    if probe.settings.get("compiled"):
        probe = make_attack("kkt", params).reconstruct(v, progress=False).runs[0]
    params["iterations"] = max(3, int(seconds / max(probe.wall_s / probe.iterations, 1e-6)))
    svd = kkt_context.row_space
    with PeakMemory(cuda=dev.startswith("cuda")) as pm:
        # memory counted from the end of the row space's SVD (a fixed ~120 MiB that would hide the loop's at small m)
        kkt_context.row_space = lambda *a, **k: (svd(*a, **k), pm.reset())[0]
        res = make_attack("kkt", params).reconstruct(v, progress=False)
    kkt_context.row_space = svd
    return {"loop_s": res.runs[0].wall_s, "its": params["iterations"], "peak_mib": pm.peak_mib, "extra_mib": pm.extra_mib, "kind": pm.kind,
            "chunk": res.runs[0].settings["restart_chunk"], "compiled": bool(res.runs[0].settings.get("compiled"))}


def cost(ms: list[int], restarts_list: list[int], devices: list[str], seconds: float, threads: int, seed: int = 0,
         products: tuple[str, ...] = ("full",), compiles: tuple[str, ...] = ("auto",)) -> None:
    """Each point in a fresh process, so that no point's memory is held over into the next one's peak."""
    say(f"== cost: kkt time per iteration and peak memory vs m; head 3072-1000-1, box prior, row-space coordinates, "
        f"float32, the restarts in one batch, torch threads {threads}, each point in a fresh process; "
        "products: kkt's product precision (reduced: bfloat16 on a CPU, TF32 on CUDA); pass: eager or compiled "
        "(kkt's compile setting: auto compiles long runs on a CPU only)")
    say(f"  {'device':<7} {'products':<8} {'pass':<8} {'batch':>5} {'m':>5} {'its':>5} {'ms/it':>9} {'restart-it/s':>13} {'peak MiB':>9} {'+MiB':>7} "
        f"{'est. MiB':>9}  memory (batch: restarts in one batch; +MiB: above what the process held after the row space's SVD; "
        "est.: harness/attacks/memory.py's estimate per batch of restarts, what chunking budgets with)")
    for dev, prod, comp, restarts in itertools.product(devices, products, compiles, restarts_list):
        pts = []
        for m in ms:
            cmd = [sys.executable, __file__, "--cost-point", f"{m},{restarts},{seconds},{dev},{prod},{comp}", "--threads", str(threads),
                   "--seed", str(seed)]
            got = subprocess.run(cmd, capture_output=True, text=True)
            line = [x for x in got.stdout.splitlines() if x.startswith("{")]
            if got.returncode or not line:
                say(f"  {dev:<7} {prod:<8} {comp:<8} {restarts:>5} {m:>5} failed: {(got.stderr.strip().splitlines() or ['?'])[-1]}")
                continue
            r = json.loads(line[-1])
            its = r["its"]
            ms_it = 1000 * r["loop_s"] / its
            pts.append((m, ms_it, r["extra_mib"]))
            est = restarts * (memory.pass_bytes(m, [(1000, 1000), (1, 1000)], 3072, 4, True) + memory.state_bytes(m, 1000, 1, 4))
            chunk = "" if r["chunk"] >= restarts else f"  (chunks of {r['chunk']} restarts)"
            passed = "compiled" if r["compiled"] else "eager"
            say(f"  {dev:<7} {prod:<8} {passed:<8} {restarts:>5} {m:>5} {its:>5} {ms_it:>9.1f} {restarts * its / r['loop_s']:>13.1f} {r['peak_mib']:>9.0f} "
                f"{r['extra_mib']:>7.0f} {est / 2**20:>9.0f}  {r['kind']}{chunk}")
        growth(f"{dev} ({prod} products, compile {comp}, {restarts} restarts)", pts)


def growth(dev: str, pts: list[tuple[int, float, float]]) -> None:
    """The exponents a in time ~ m^a (first to last m, and the last two) and memory ~ m^a (the last two:
    at small m the m-independent part, the row space's SVD and the head's copies, dominates)."""
    if len(pts) < 2:
        return
    slope = lambda p, q, k: math.log(max(q[k], 1e-9) / max(p[k], 1e-9)) / math.log(q[0] / p[0])  # noqa: E731
    (a, b), first = pts[-2:], pts[0]
    mem = f"extra memory as m^{slope(a, b, 2):.2f} from {a[0]} to {b[0]}" if min(a[2], b[2]) > 32 else \
        "extra memory too small to fit a growth at these m"
    say(f"  {dev}: time per iteration grows as m^{slope(first, b, 1):.2f} from m = {first[0]} to {b[0]} "
        f"(m^{slope(a, b, 1):.2f} from {a[0]} to {b[0]}); {mem}; 1.00 = linear in m")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", default="table,cost", help="comma list of: table, cost")
    ap.add_argument("--cases", default="pixels,text", help=f"comma list of: {', '.join(CASES)}")
    ap.add_argument("--ns", default=None, help="members in all (default 20,50,100; also 250,500 with CUDA)")
    ap.add_argument("--seconds-per-member", type=float, default=36.0, help="attack budget per member (real victim)")
    ap.add_argument("--null-share", type=float, default=1.0, help="the null victim's budget as a share of the real one's (0: no null)")
    ap.add_argument("--real-share", type=float, default=1.0, help="the real victim's budget as a share (0: the null victim only)")
    ap.add_argument("--cost-ms", default="40,100,200,500,1000")
    ap.add_argument("--cost-restarts", default="1", help="cost part: comma list of restarts in one batch (e.g. 16,128)")
    ap.add_argument("--cost-products", default="full", help="cost part: comma list of kkt's product precisions (full, reduced)")
    ap.add_argument("--cost-compile", default="auto", help="cost part: comma list of kkt's compile settings (off, on, auto)")
    ap.add_argument("--cost-seconds", type=float, default=10.0, help="seconds of iterations per cost point (at least one)")
    ap.add_argument("--devices", default=None, help="cost part: comma list of cpu, cuda (default: cuda if present, else cpu)")
    ap.add_argument("--pixel-steps", type=int, default=None,
                    help=f"steps of the pixel victims' training (default {PIXEL_HEAD.max_steps} GD steps, "
                         f"{LBFGS_STEPS} L-BFGS steps)")
    ap.add_argument("--pixel-optimizer", default="gd", choices=("gd", "lbfgs"),
                    help="the pixel victims' full-batch optimizer (lbfgs: lr 1, up to 20 inner iterations a step)")
    ap.add_argument("--pixel-schedule", default="constant", choices=("constant", "cosine"),
                    help="the GD pixel victims' step: constant, or cosine-decayed from lr to 0 over the steps")
    ap.add_argument("--pixel-classes", default="1,3", help="the two CIFAR-10 classes of the pixel case (1,3: automobile vs cat)")
    ap.add_argument("--text-data", default="sst2",
                    help="the text case's data: sst2, fortunes:CAT_A,CAT_B (Debian's fortunes) or debian:SECTION_A,SECTION_B "
                         "(Debian's package descriptions; both text this repository does not hold), any with @ENCODER for "
                         "another encoder (bench/encoders.py: @mpnet)")
    ap.add_argument("--text-head", type=json.loads, default={},
                    help='the text victims\' head settings over the bench\'s (bench/recipes.py: TEXT_HEAD), as JSON (e.g. '
                         '\'{"max_steps": 12000, "lr_schedule": "cosine"}\')')
    ap.add_argument("--attack", type=json.loads, default={},
                    help='kkt settings over the bench\'s, as JSON (e.g. \'{"recombine": 0.5}\'); the budget stays per member')
    ap.add_argument("--planted", action="store_true",
                    help=f"also start the attack at the real victim's members + 30%% noise ({recipes.PLANTED_RUN}): do they stay, "
                         "and at what loss against the search's? (data or search: which one limits)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 on a shared CPU machine)")
    ap.add_argument("--cost-point", default=None, help=argparse.SUPPRESS)  # m,restarts,seconds,device,products,compile: one point, as JSON
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    if a.pixel_schedule != "constant" and a.pixel_optimizer == "lbfgs":
        ap.error("--pixel-schedule cosine needs --pixel-optimizer gd (lbfgs searches its own step)")
    if "time_budget_s" in a.attack:
        ap.error("--attack: time_budget_s is set by --seconds-per-member (the budget is per member); leave it out")
    if a.cost_point:
        m, r, sec, dev, prod, comp = a.cost_point.split(",")
        print(json.dumps(cost_point(int(m), int(r), float(sec), dev, a.seed, prod, comp)), flush=True)
        return 0
    if not all(r.isdigit() and int(r) > 0 for r in a.cost_restarts.split(",")):
        ap.error(f"--cost-restarts {a.cost_restarts!r}: give a comma list of positive whole numbers, e.g. 16,128")
    if bad_products := set(a.cost_products.split(",")) - set(get_args(precision.Products)):
        ap.error(f"--cost-products {a.cost_products!r}: unknown {sorted(bad_products)}; use full, reduced or full,reduced")
    if bad_compile := set(a.cost_compile.split(",")) - set(get_args(fused.Compile)):
        ap.error(f"--cost-compile {a.cost_compile!r}: unknown {sorted(bad_compile)}; use a comma list of off, on, auto")
    if (why := recipes.name_error(a.text_data)) or recipes.is_pixels(a.text_data):
        ap.error(f"--text-data {why}" if "@" in a.text_data else
                 f"--text-data {a.text_data!r}: use sst2, fortunes:CAT_A,CAT_B (two categories of Debian's fortunes) or "
                 "debian:SECTION_A,SECTION_B (two sections of Debian's package descriptions)")
    try:
        text_head = validated_params(recipes.HeadRecipe, {**recipes.TEXT_HEAD.model_dump(), **a.text_head},
                                     "--text-head") if a.text_head else None
    except HarnessError as exc:
        ap.error(exc.line())
    cuda = torch.cuda.is_available()
    parts = {p for p in a.part.split(",") if p}
    bad = parts - {"table", "cost"} or {c for c in a.cases.split(",") if c} - set(CASES)
    if bad:
        ap.error(f"unknown {sorted(bad)}; --part takes table, cost and --cases {', '.join(CASES)}")
    say(f"== bench/scale.py: torch {torch.__version__}, {'CUDA ' + torch.cuda.get_device_name() if cuda else 'no CUDA'}, "
        f"{a.threads} torch thread(s)")
    if "cost" in parts:
        devices = (a.devices or ("cuda" if cuda else "cpu")).split(",")
        cost([int(m) for m in a.cost_ms.split(",")], [int(r) for r in a.cost_restarts.split(",")], devices, a.cost_seconds, a.threads, a.seed,
             tuple(a.cost_products.split(",")), tuple(a.cost_compile.split(",")))
    if "table" in parts:
        ns = [int(k) for k in (a.ns or ("20,50,100,250,500" if cuda else "20,50,100")).split(",")]
        rows = []
        for n in ns:
            for case in [c for c in a.cases.split(",") if c]:
                t = time.perf_counter()
                r = row(case, n, a.seed, a.seconds_per_member, a.null_share, pixel_head(a.pixel_optimizer, a.pixel_steps, a.pixel_schedule),
                        text_head, a.pixel_classes, a.real_share, a.attack, a.planted, a.text_data)
                if r and "real" not in r:  # the null victim only: its own line above is the result
                    continue
                if r:
                    rows.append(r)
                    say(f"   ({case} n={n} took {time.perf_counter() - t:.0f}s)")
        if rows:  # (--real-share 0: the null victims' own lines are the result)
            table(rows, a.seconds_per_member, a.null_share)
    return 0


if __name__ == "__main__":
    sys.exit(main())
