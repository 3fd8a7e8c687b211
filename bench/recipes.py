"""Victim recipes x data: which heads leak their members, measured side by side in one run.

    python bench/recipes.py [--data sst2,fortunes:science,politics,cifar] [--recipes none+paper,standardize+paper,...]
                            [--n 10] [--seeds 0] [--scale]
    python bench/attack.py --case recipes      (the same, with its defaults)

Each victim is built by the harness's victim builder (harness/victims) and attacked by the harness's
attack stage (the same code `recon-harness run` runs), with the same attack budget (iterations, not
time) for every recipe. Per recipe x data it prints: active units per member, oracle residual, the
planted check (members + 30% noise: do they stay?), TPR@1%FPR, members at cosine > 0.8 (SSIM > 0.4
for pixels) and the same for the disjoint null victim (same recipe, shuffled labels, a disjoint draw).
`--scale` adds the x20 case: a head trained on MiniLM embeddings scaled x20, attacked with a unit-sphere
prior that ignores the scale (before) and with the frame-aware prior (after).
Text data embed with MiniLM; a name's @ENCODER suffix embeds with another encoder (bench/encoders.py:
sst2@mpnet, fortunes:science,politics@mpnet). Text this repository does not hold: Debian's fortunes
(fortunes:CAT_A,CAT_B) and Debian's package descriptions by archive section (debian:games,science, read from
apt's package lists).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's harness, not an installed one
sys.path.insert(0, str(Path(__file__).resolve().parent))
warnings.filterwarnings("ignore")

import encoders  # noqa: E402
from attack_data import TEXT_SOURCES, ShortClass, pixel_set, text_set  # noqa: E402

from harness.attacks import make_attack  # noqa: E402
from harness.attacks.base import Victim  # noqa: E402
from harness.attacks.kkt import KKTFastParams  # noqa: E402
from harness.attacks.priors import domain_prior  # noqa: E402
from harness.errors import HarnessError  # noqa: E402
from harness.heads.train import fit_head  # noqa: E402
from harness.params import validated_params  # noqa: E402
from harness.victims.trainers.paper import head_config  # noqa: E402
from harness.diagnostics.identifiability import check as planted_check  # noqa: E402
from harness.pipeline.polish import polish_stage  # noqa: E402
from harness.pipeline.stages import Embedded, attack_stage, pixel_score_stage, score_stage  # noqa: E402
from harness.scoring.embedding import match  # noqa: E402
from harness.specs.task import AttackRecipe, HeadRecipe  # noqa: E402
from harness.victims.build import TrainingDiverged, VictimData, attack_view, build_victim  # noqa: E402
from harness.victims.frame import Frame  # noqa: E402
from harness.victims.spec import VictimSpec  # noqa: E402

TEXT_HEAD = HeadRecipe(widths=[1000], init_scale=1e-3, optimizer="adam", lr=1e-3, weight_decay=1e-3, max_steps=3000,
                       grad_tol=1e-6, plateau_steps=500, plateau_tol=1e-3)
# The benches' pixel victims: full-batch GD. At lr 1.0 x 3000 steps one draw in sixteen at n = 20 diverged (and
# n = 100 did, weights 4e19 by step 61); half the step for twice the steps (the same gradient-flow time) trains
# every real draw measured, n = 20 to 500 (docs/attack.md, "Pixels at n = 20 on three pairs"); one null draw (bird vs
# frog, seed 0) diverged at it, and `victim` halves the step again where that happens.
PIXEL_HEAD = HeadRecipe(widths=[1000], init_scale=1e-3, optimizer="gd", lr=0.5, weight_decay=1e-3, max_steps=6000,
                        grad_tol=1e-6)
# 8 brackets (35-70 s a victim at 10 per class on one thread): 2 left fortunes at 7-14 of 20 where 8 give 13-16
TEXT_ATTACK = {"m": 40, "restarts": 16, "iterations": 1500, "brackets": 8, "subspace": "auto"}
# 16 brackets (about 2 minutes at n = 20 on one thread): 4 left the two airplane vs horse draws at 15-16 of 20
PIXEL_ATTACK = {"m": 40, "restarts": 16, "iterations": 1500, "brackets": 16, "subspace": "auto"}
RECIPES = {
    "none+paper": VictimSpec(),
    "raw+paper": VictimSpec(transform="raw"),
    "standardize+paper": VictimSpec(transform="standardize"),
    "standardize+sklearn-mlp": VictimSpec(transform="standardize", trainer="sklearn-mlp"),
    "standardize+default-torch": VictimSpec(transform="standardize", trainer="default-torch"),
    "standardize+linear": VictimSpec(transform="standardize", trainer="linear"),
    "standardize+dp-sgd(eps=8)": VictimSpec(transform="standardize", trainer="dp-sgd", params={"epsilon": 8.0}),
    "standardize+dp-sgd(eps=1)": VictimSpec(transform="standardize", trainer="dp-sgd", params={"epsilon": 1.0}),
}
DATA = {"sst2": "MiniLM / SST-2 (../shared/data)", "fortunes:science,politics": "MiniLM / fortunes science vs politics",
        "fortunes:computers,people": "MiniLM / fortunes computers vs people", "cifar": "pixels / CIFAR-10 automobile vs cat"}


def say(*a):
    print(*a, flush=True)


def is_pixels(name: str) -> bool:
    """'cifar' and 'cifar:A,B' are pixel data; every other name is a text set."""
    return name.split(":")[0] == "cifar"


def name_error(name: str) -> str | None:
    """Why `name` is not a data name load() takes (sst2, fortunes:CAT_A,CAT_B, cifar, cifar:A,B; a text name
    with @ENCODER, bench/encoders.py), or None."""
    full, (name, encoder) = name, encoders.split(name)
    if encoder != encoders.DEFAULT and name.split(":")[0] == "cifar":
        return f"{full!r}: pixels take no encoder (the identity backbone); drop @{encoder}"
    if encoder != encoders.DEFAULT and (why := encoders.error(encoder)):
        return f"{full!r}: {why}"
    head, _, tail = name.partition(":")
    parts = tail.split(",")
    ok = (name in ("sst2", "cifar") or (head in TEXT_SOURCES and len(parts) >= 2 and all(parts))
          or (head == "cifar" and len(set(parts)) == len(parts) >= 2 and all(c.isdigit() and int(c) < 10 for c in parts)))
    return None if ok else (f"{name!r}: use sst2, fortunes:CAT_A,CAT_B[,...] (two or more categories of Debian's "
                            "fortunes), debian:SECTION_A,SECTION_B[,...] (two or more sections of Debian's package "
                            "descriptions), cifar or cifar:A,B[,...] (two or more CIFAR-10 class indices)")


def load(name: str, n: int, seed: int) -> dict | None:
    """'cifar' (automobile vs cat) or 'cifar:A,B' (CIFAR-10 class indices), else a text set (attack_data.text_set)."""
    if is_pixels(name):
        classes = [int(c) for c in name.split(":")[1].split(",")] if ":" in name else [1, 3]
        return pixel_set(classes, n, 400, seed)
    return text_set(name, n, 400, seed)


def load_or_skip(name: str, n: int, seed: int) -> tuple[dict | None, str]:
    """load(name, n, seed), or None and the line that says why this data set is skipped here."""
    try:
        d = load(name, n, seed)
    except ShortClass as exc:  # too few texts or images in a class for the draw: a line, not a smaller draw
        return None, f"{exc}; skipped"
    return d, "" if d is not None else "data not available here; skipped (RECON_SHARED_DATA; fortunes or apt lists: README)"


def embedded(d: dict) -> Embedded:
    """The pipeline's Embedded for a data dict (members' centring, raw rows kept for the victims' frames)."""
    mem, non = d["members"].float(), d["public"].float()
    mean = mem.mean(0)
    raw = torch.cat([mem, non, d["null"].float()])
    return Embedded(mem - mean, non - mean, mean, d["l2"], True, 0.0, raw=raw)


DIVERGED_RETRIES = 2  # halvings of the step a diverged victim gets before the bench gives up on the draw


def victim(d: dict, spec: VictimSpec, pixels: bool, seed: int, kind: str, head: HeadRecipe | None = None):
    """The real victim (kind 'real') or its disjoint null (kind 'null'), built by the harness's builder
    with the bench's head recipe (or `head`; cross-entropy where the data have more than two classes); a head whose
    training diverges is trained again at half the step for twice the steps (up to DIVERGED_RETRIES times, saying
    so); returns (trained victim, the head recipe it was trained with, seconds)."""
    head = multiclass(head or (PIXEL_HEAD if pixels else TEXT_HEAD), classes_of(d))
    data = VictimData(d["members"].float(), d["labels"], classes_of(d), d["public"].float(), d["public_labels"],
                      d["null"].float(), d["null_labels"], d["l2"])
    t0 = time.perf_counter()
    for retry in range(DIVERGED_RETRIES + 1):
        try:
            v = build_victim(spec, head, data, seed, kind, "disjoint" if kind == "null" else None)
            break
        except TrainingDiverged as exc:  # the builder's fix for a diverged head: a smaller step
            if retry == DIVERGED_RETRIES or exc.field != "head.lr":  # (a trainer's own lr is not the bench's to halve)
                raise
            say(f"  {exc.fix.split(';')[0]} at lr {head.lr:g}; trained again at half the step for twice "
                "the steps (the same gradient-flow time)")
            head = head.model_copy(update={"lr": head.lr / 2, "max_steps": head.max_steps * 2})
    return v, head, time.perf_counter() - t0


def classes_of(d: dict) -> int:
    """How many classes the data of `d` have (every class has members)."""
    return int(d["labels"].max()) + 1


def multiclass(head: HeadRecipe, classes: int) -> HeadRecipe:
    """`head` for data of `classes` classes: the binary logistic loss on two, else cross-entropy with one output a
    class (as a task with more than two `classes:` states `head.loss: ce`)."""
    return head if classes == 2 or head.loss != "logistic" else head.model_copy(update={"loss": "ce"})


def attack_params(pixels: bool, n: int, seed: int, budget: dict | None = None) -> dict:
    """The bench's kkt settings (or `budget`), with about two candidates per member."""
    params = {**(budget or (PIXEL_ATTACK if pixels else TEXT_ATTACK)), "seed": seed}
    params["m"] = max(params["m"], 2 * n)
    return params


def attack_scored(v, head: HeadRecipe, d: dict, pixels: bool, params: dict):
    """Attack `v` with the harness's attack stage and score it against the members of `d`; returns
    (row dict, attack result)."""
    emb = embedded(d)
    t0 = time.perf_counter()
    searched = attack_stage(v, emb, head, AttackRecipe(name="kkt", params=params), classes_of(d), pixels, False)
    res = polish_stage(searched, v, emb, head, pixels)  # as the pipeline's finish does
    attack_s = time.perf_counter() - t0
    s = score_stage(res, emb, 0.01)
    out = {"active": v.active_share, "oracle": v.oracle_residual, "carried": v.effective_members, "in_w1": v.in_row_space, "own": v.own_pattern, "tpr": s.tpr, "cos08": int((s.member_best > 0.8).sum()),
           "n": len(emb.members), "attack_s": attack_s, "linear": v.linear, "test_acc": v.test_acc,
           "eps": v.info.get("epsilon"), "best_loss": min((r.final_loss for r in res.runs if r.status == "ok"), default=float("nan")),
           "pub08": s.public_good(0.8), "beyond08": s.beyond_public(0.8), "planted_its": planted_iterations(res),
           "half": s.good_first_half,
           "unpolished": None if res.polish is None else int((score_stage(searched, emb, 0.01).member_best > 0.8).sum())}
    if pixels:
        px = pixel_score_stage(res, emb, 0.01, (3, 32, 32))
        out["ssim04"] = px.good if px else 0
        out["ssim_tpr"] = px.tpr if px else 0.0
        out["pub_ssim"] = px.public_good if px else None
        out["beyond_ssim"] = px.beyond_public if px else None
        out["half"] = px.good_first_half if px else None
    return out, res


PLANTED_MAX_ITERATIONS = 6000  # the planted check's cap: the pixel bench's 16 brackets would make it 24,000
PLANTED_RUN = (f"as many iterations as the search's deepest lineage (at most {PLANTED_MAX_ITERATIONS}), 4 restarts at steps "
               "a decade below the search's")  # how the planted check runs, as the benches print it


def planted_iterations(res) -> int:
    """How long the planted check runs beside search `res`: its deepest lineage, at most PLANTED_MAX_ITERATIONS."""
    return min(lineage_iterations(res), PLANTED_MAX_ITERATIONS)


def lineage_iterations(res) -> int:
    """The most iterations a search's candidates can have been optimised for: the most any restart of a bracket ran,
    summed over the brackets where later brackets restart from earlier candidates (recombine > 0)."""
    per_bracket: dict[int, int] = {}
    for r in res.runs:
        b = r.run_id // res.params.get("restarts", 1)  # the linear recipe's weighted sum is one run, no restarts
        per_bracket[b] = max(per_bracket.get(b, 0), r.iterations)
    its = list(per_bracket.values()) or [0]
    return max(1, sum(its) if res.params.get("recombine", 0) > 0 else max(its))


def one(d: dict, spec: VictimSpec, pixels: bool, seed: int, kind: str, attack: dict | None = None,
        head: HeadRecipe | None = None) -> dict:
    v, head, train_s = victim(d, spec, pixels, seed, kind, head)
    params = {**attack_params(pixels, len(d["members"]), seed), **(attack or {})}
    out, _ = attack_scored(v, head, d, pixels, params)
    out["train_s"] = train_s
    if kind == "real" and not v.linear:
        out["planted"], _, _ = planted(v, head, d, pixels, params, seed, out["best_loss"], out["planted_its"])
    return out


def planted(v, head: HeadRecipe, d: dict, pixels: bool, params: dict, seed: int,
            best_loss: float, iterations: int) -> tuple[str, object, float]:
    """The planted check on a real victim: the attack started at its members + 30% noise, beside as many free
    candidates as the search had more than n (the same m, so the losses compare), for `iterations` (the search's
    `planted_iterations`: both losses after about as many steps); ('k/n xR', the check's result, R): k members still
    at cosine > 0.8, R = that run's loss over `best_loss` (what the search found).
    Planted members that stay prove identifiability only where their loss beats what search finds: on a
    flat loss (a DP head) candidates do not move from wherever they start."""
    members = v.frame.apply(d["members"].float())
    public = v.frame.apply(d["public"].float())
    view = attack_view(v, head, classes_of(d), domain_prior(pixels), float(public.norm(dim=1).median()), public)
    pc = plant(view, members, d["labels"], params, seed, iterations)
    ratio = pc.kept_loss / best_loss if best_loss > 0 else float("nan")
    return f"{pc.end_good}/{len(members)} x{ratio:.1f}", pc, ratio


def plant(view, members: torch.Tensor, labels: torch.Tensor, params: dict, seed: int, iterations: int):
    """The bench's planted check: the members + 30% noise beside the search's m - n free candidates, 4 restarts for
    `iterations` in the full space (a 10-iteration scratch run beside it), at steps drawn from a decade below the
    search's smallest: the run follows the loss down into the basin it starts in, where the search's steps throw
    candidates out of it (docs/attack.md, "The planted check, run as long as the search"). 500 iterations, as this
    check ran before, can end above a loss the members reach later: on MiniLM / fortunes computers vs people (50 per
    class) the planted loss went 0.00114 -> 0.00073 from 500 to 2000 iterations, against the search's 0.00100."""
    p = KKTFastParams.model_validate(params)
    lo = p.lr if p.lr is not None else p.lr_range[0]
    return planted_check(view, members, labels, {**params, "iterations": iterations, "restarts": 4, "subspace": "off",
                                                 "lr": None, "lr_range": (lo / 10, lo)},
                         noise=0.3, seed=seed, scratch_params={"iterations": 10}, free=max(params["m"] - len(members), 0))


def fmt_row(data: str, recipe: str, r: dict, nr: dict | None, pixels: bool, width: int = 26) -> str:
    good = f"{r['ssim04']}/{r['n']} ssim" if pixels else f"{r['cos08']}/{r['n']}"
    null = "-" if nr is None else (f"{nr['ssim04']}/{nr['n']} ssim" if pixels else f"{nr['cos08']}/{nr['n']}") + f" tpr {nr['tpr']:.2f}"
    act = "-" if r["active"] is None else f"{r['active']:.2f}"
    carried = "-" if r.get("carried") is None else f"{r['carried']:.0f}"
    in_w1 = "-" if r.get("in_w1") is None else str(r["in_w1"])
    own = "-" if r.get("own") is None else str(r["own"])
    eps = f" eps {r['eps']:.2f}" if r.get("eps") is not None else ""
    half = "-" if r.get("half") is None else str(r["half"])
    unpolished = "-" if r.get("unpolished") is None else str(r["unpolished"])
    return (f"  {data:<{width}} {recipe:<27} {act:>6} {r['oracle']:>8.3f} {carried:>7} {in_w1:>5} {own:>4} {r['best_loss']:>8.3g} {r.get('planted', '-'):>12} "
            f"{r['tpr']:>6.2f} {good:>10} {unpolished:>10} {half:>8} {public_cell(r, pixels):>13} {null:>18} {r['test_acc']:>5.2f} {r['train_s'] + r['attack_s']:>6.0f}s{eps}")


def public_cell(r: dict, pixels: bool) -> str:
    """'beyond/public': members matched by a candidate closer than any public input, and members the public
    inputs alone match (at the same rule)."""
    beyond, pub = (r.get("beyond_ssim"), r.get("pub_ssim")) if pixels else (r.get("beyond08"), r.get("pub08"))
    return "-" if beyond is None else f"{beyond} / {pub}"


def scale_case(seed: int) -> None:
    """x20: the same MiniLM / SST-2 members, a head trained on centred embeddings x20."""
    d = text_set("sst2", 10, 400, seed)
    if d is None:
        say("  scale case: ../shared/data not found; skipped")
        return
    mem = d["members"].float()
    mean = mem.mean(0)
    frame = Frame(mean, torch.full_like(mean, 1 / 20), True, "x20")
    x = frame.apply(mem)
    head, _ = fit_head(x, d["labels"], 2, TEXT_HEAD.widths, TEXT_HEAD.bias, TEXT_HEAD.init_scale, head_config(TEXT_HEAD, seed), seed)
    members, public = frame.apply(mem), frame.apply(d["public"].float())
    from harness.diagnostics.oracle import oracle_residual

    say(f"  x20 victim: member norm {float(members.norm(dim=1).mean()):.1f}, active units/member "
        f"{float(head.activation_patterns(members)[0].float().mean()):.2f}, oracle residual "
        f"{oracle_residual(head, 'logistic', members, d['labels']):.4f}")
    params = {**TEXT_ATTACK, "brackets": 2, "seed": seed}  # the budget of the before/after figures (docs/attack.md)
    for label, vf, prior in [("before: unit-sphere prior, frame ignored", Frame(mean, None, True), "sphere"),
                             ("after: sphere prior through the frame", frame, "sphere"),
                             ("after: norm prior in the frame", frame, "norm")]:
        view = Victim(head=copy.deepcopy(head), loss="logistic", num_classes=2, frame=vf, weight_decay=TEXT_HEAD.weight_decay,
                      prior=prior, typical_norm=float(public.norm(dim=1).median()))
        t0 = time.perf_counter()
        res = make_attack("kkt", params).reconstruct(view, progress=False)
        cands = vf.to_raw(res.candidates.double()) - mean.double()  # back to the members' centred embeddings
        s = match(cands.float(), mem - mean, d["public"].float() - mean)
        pc = plant(view, members, d["labels"], params, seed, planted_iterations(res))
        best = min((r.final_loss for r in res.runs if r.status == "ok"), default=float("nan"))
        say(f"    {label:<44} planted {pc.end_good}/20 (cos {pc.end_cos:.2f}), from scratch {int((s.member_best > 0.8).sum())}/20 "
            f"at cos > 0.8 (>0.9: {int((s.member_best > 0.9).sum())}), TPR {s.tpr:.2f}, best residual {best:.3g}, "
            f"{time.perf_counter() - t0:.0f}s")


def split_names(data: str) -> list[str]:
    """The --data comma list as data names ('fortunes:a,b' and 'cifar:A,B' hold a comma of their own)."""
    names: list[str] = []
    for it in (x for x in data.split(",") if x):
        base = encoders.split(it)[0]  # 'politics@mpnet' continues 'fortunes:science'
        if names and ":" in names[-1] and ":" not in base and base not in ("sst2", "cifar"):
            names[-1] += "," + it
        else:
            names.append(it)
    return names


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="sst2,fortunes:science,politics,cifar",
                    help="comma list of: sst2, fortunes:CAT_A,CAT_B[,...] (Debian's fortunes), debian:SECTION_A,SECTION_B[,...] "
                         "(Debian's package descriptions), cifar or cifar:A,B[,...] (class "
                         "indices; more than two: a cross-entropy head); "
                         "a text name may end in @ENCODER (bench/encoders.py: @mpnet)")
    ap.add_argument("--recipes", default=",".join(RECIPES), help=f"comma list of {', '.join(RECIPES)}")
    ap.add_argument("--pixel-recipes", default="none+paper,standardize+paper,standardize+sklearn-mlp")
    ap.add_argument("--n", type=int, default=10, help="members per class")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--scale", action="store_true", help="also the x20 before/after case")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--attack", type=json.loads, default={},
                    help='kkt settings over the bench\'s, as JSON (e.g. \'{"restarts": 32, "recombine": 0.5}\')')
    ap.add_argument("--head", type=json.loads, default={},
                    help='head recipe settings over the bench\'s, as JSON (e.g. \'{"lr_schedule": "cosine"}\')')
    a = ap.parse_args(argv)
    for flag, given in (("--recipes", a.recipes), ("--pixel-recipes", a.pixel_recipes)):
        unknown = [r for r in given.split(",") if r and r not in RECIPES]
        if unknown:
            ap.error(f"{flag}: unknown recipe {unknown[0]!r}; choose from {', '.join(RECIPES)}")
    if not all(s.strip().lstrip("-").isdigit() for s in a.seeds.split(",")):
        ap.error(f"--seeds {a.seeds!r}: give whole numbers, comma-separated (e.g. 0,1)")
    torch.set_num_threads(a.threads)
    names = split_names(a.data)
    bad = [e for e in map(name_error, names) if e]
    if bad:
        ap.error(f"--data {bad[0]}")
    try:  # the bench's heads with --head over them, built (and checked) once
        heads = {p: validated_params(HeadRecipe, {**(PIXEL_HEAD if p else TEXT_HEAD).model_dump(), **a.head}, "--head")
                 for p in (False, True)}
    except HarnessError as exc:
        ap.error(exc.line())
    say(f"== recipes x data, {a.n} members per class, seeds {a.seeds}; text attack {TEXT_ATTACK}, pixel attack {PIXEL_ATTACK}"
        + (f", with {a.attack}" if a.attack else "") + (f"; heads with {a.head}" if a.head else ""))
    say("  planted: the attack started at the members + 30% noise beside m - n free candidates (the search's m), "
        f"{PLANTED_RUN}; members kept at cosine > 0.8 and that run's loss over the search's "
        "(below x1: the loss singles the members out)")
    width = max([26] + [len(x) + 4 for x in names])  # room for ' s12'
    say(f"  {'data':<{width}} {'recipe':<27} {'active':>6} {'oracle':>8} {'carried':>7} {'in W1':>5} {'own':>4} {'search':>8} {'planted':>12} {'TPR':>6} {'members':>10} "
        f"{'unpolished':>10} {'1st half':>8} {'beyond / pub':>13} {'disjoint null':>18} {'acc':>5} {'time':>7}")
    for seed in (int(s) for s in a.seeds.split(",")):
        for name in names:
            pixels = is_pixels(name)
            d, why = load_or_skip(name, a.n, seed)
            if d is None:
                say(f"  {name}: {why}")
                continue
            recipes = a.pixel_recipes if pixels else a.recipes
            for rname in [r for r in recipes.split(",") if r]:
                spec = RECIPES[rname]
                try:
                    r = one(d, spec, pixels, seed, "real", a.attack, heads[pixels])
                    nr = None if r["linear"] else one(d, spec, pixels, seed, "null", a.attack, heads[pixels])
                except Exception as exc:  # noqa: BLE001 - a recipe that cannot run here is a row, not a crash
                    say(f"  {name:<{width}} {rname:<27} failed: {type(exc).__name__}: {exc}")
                    continue
                say(fmt_row(f"{name}" + (f" s{seed}" if seed else ""), rname, r, nr, pixels, width)
                    + ("  (linear head: weighted sum only)" if r["linear"] else ""))
    say("  active = mean share of first-layer units firing on a member; oracle = members' best relative KKT residual; carried = how many members θ carries (participation ratio of "
        "the oracle fit's per-member parts; the search finds the largest parts first); in W1 = members whose cut into W1's "
        "row space (kkt's subspace: auto) keeps cosine > 0.8: at most this many can come back from there; "
        "own = members with an activation pattern no other member shares (those that share one enter θ only through their "
        "group's weighted sum, and come back only where they are alike: harness/diagnostics/patterns.py); "
        "planted = members still at cosine > 0.8 after the attack started at them + 30% noise beside m - n free candidates ("
        f"{PLANTED_RUN}), and that run's loss over the "
        "best loss found from scratch (x < 1: the loss prefers the members; x >> 1 with members kept: a flat loss "
        "that leaves any start in place); members = members with a "
        "candidate at cosine > 0.8 (SSIM > 0.4 for pixels); unpolished = the same before the polish, from the same search "
        "('-' where the polish does not run: docs/attack.md, \"Polish\"); 1st half = the same from the first half of the search's brackets, "
        "so members - 1st half is what the second half of the budget added; beyond / pub = members with such a candidate closer to them than any public "
        "input, and members a public input alone matches at that rule (the attacker holds the public inputs); disjoint null = the same for the control; acc = test accuracy")
    if a.scale:
        say("== scale: x20 MiniLM / SST-2 victim (none+paper recipe on centred embeddings x20), before and after")
        scale_case(int(a.seeds.split(",")[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
