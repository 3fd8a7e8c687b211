"""Benchmark of issue 4: selection precision vs. the lowest-loss baseline, image and text inversion.

    .venv/bin/python bench/evidence.py [--quick] [--cases text,fortunes,debian,pixels,vit] [--transform standardize] [--threads 2]
                                      [--text-model CARD]

Cases (from ../shared/data, or $RECON_SHARED_DATA; skipped cleanly when absent):
  text   MiniLM (or --text-model CARD) / SST-2, binary, 10 per class, head 384-1000-1, 400 non-members, kkt
  fortunes  the same on Debian's fortunes (science vs politics, or --fortunes A,B; text this repository does not hold)
  debian the same on Debian's package descriptions (games vs science, or --debian A,B: two archive sections)
  pixels CIFAR-10 automobile vs cat, 10 per class, head 3072-1000-1, identity backbone, kkt
  vit    CIFAR-10 automobile vs cat through a tiny ViT built here (no pretrained vision weights
         offline), 10 per class, head 32-1000-1: DIP inversion of true and reconstructed embeddings
Prints every figure side by side; nothing is hard-coded.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))  # attack_data, recipes (imported where used: they load torch)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")



def scratch(prefix: str) -> Path:
    """A temporary folder removed when the bench exits (embeddings, a tiny model): nothing left in /tmp."""
    import atexit
    import shutil

    path = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path

def shared_data() -> Path | None:
    p = Path(os.environ.get("RECON_SHARED_DATA", ROOT.parent / "shared" / "data"))
    return p if (p / "sst2").is_dir() and (p / "cifar10").is_dir() else None


def task(name, model, source, col, classes, per_class, nonmembers, head, attack, victim=None):
    from harness.specs.task import TaskSpec

    return TaskSpec.model_validate({
        "name": name, "model": model, "classes": classes, "per_class": per_class, "nonmembers": nonmembers,
        "data": {"source": str(source), "format": "parquet", "input_column": col, "label_column": "label"},
        "head": head, "attack": attack, **({"victim": victim} if victim else {}),
    })


# the paper recipe of tasks/quickstart.yaml (small init, weight decay, to a plateau of the objective)
TEXT_HEAD = {"widths": [1000], "init_scale": 0.001, "loss": "logistic", "optimizer": "adam", "lr": 0.001,
             "weight_decay": 0.001, "max_steps": 3000, "grad_tol": 1e-6, "plateau_steps": 500, "plateau_tol": 1e-3}


def source_parquet(source: str, cats: tuple[str, ...]) -> Path | None:
    """Two classes of a text source this repository does not hold (attack_data.TEXT_SOURCES: Debian's fortunes
    by category, Debian's package descriptions by section) as a Parquet file with class names, written again when the
    source's texts change (apt's lists do, with `apt-get update`)."""
    from attack_data import CACHE, TEXT_SOURCES

    got = TEXT_SOURCES[source].read(cats)
    if got is None:
        return None
    import datasets
    import pyarrow.parquet as pq

    path = CACHE / f"{source}-{'-'.join(cats)}.parquet"
    if not path.exists() or pq.read_table(path, columns=["sentence"]).column("sentence").to_pylist() != got[0]:
        path.parent.mkdir(parents=True, exist_ok=True)
        feats = datasets.Features({"sentence": datasets.Value("string"), "label": datasets.ClassLabel(names=list(cats))})
        datasets.Dataset.from_dict({"sentence": got[0], "label": got[1].tolist()}, features=feats).to_parquet(str(path))
    return path


HEAD = {"widths": [1000], "init_scale": 0.1, "loss": "logistic", "optimizer": "adam", "lr": 0.001,
        "weight_decay": 0.001, "max_steps": 2000, "target_loss": 1e-4}


def run(t, card, recipe, cache):
    from harness.pipeline.plan import plan_unit
    from harness.pipeline.unit import run_unit

    unit, resolved = plan_unit(t, card)
    t0 = time.perf_counter()
    o = run_unit(unit, resolved, None, cache_dir=cache, progress=True, evidence=recipe)
    return o, time.perf_counter() - t0


def selection_line(name, o):
    for kind in ("real", "null"):
        ev = o.evidence.get(kind)
        if ev is None or ev.cluster is None:
            print(f"  {name:<7}{kind:<5} no candidates")
            continue
        n = o.split.n
        ratio = lambda a, b: f"x{a / b:.1f}" if b > 0 else "x-"  # noqa: E731
        cells = "  ".join(f"P@{k} {ev.cluster.precision[k]:.2f} vs {ev.baseline.precision[k]:.2f} "
                          f"({ratio(ev.cluster.precision[k], ev.baseline.precision[k])})" for k in ev.cluster.ks)
        vo = o.outcomes[kind]
        ssim = f"  SSIM>0.4 {vo.pixels.good}/{n}" if vo.pixels is not None else ""
        print(f"  {name:<7}{kind:<5} n={n} TPR@1%FPR {vo.scores.tpr:.2f}{ssim}  clusters {len(ev.selection):>3}  {cells}  "
              f"(P@20 can reach at most {min(1, n / 20):.2f})")


def mean(xs):
    xs = list(xs)
    return sum(xs) / len(xs) if xs else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a 60 s pixel attack (300 s without), shorter DIP "
                    "inversions, and the word search on the top 3 selections (10 without); the text attack is the same")
    ap.add_argument("--cases", default="text,pixels,vit", help="comma-separated subset of text, fortunes, debian, pixels, vit")
    ap.add_argument("--transform", default="standardize", help="the text victims' input transform (none, standardize, l2)")
    ap.add_argument("--n", type=int, default=10, help="text members per class")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (1 to run two cases side by side on 2 cores)")
    ap.add_argument("--text-model", default="all-minilm-l6-v2",
                    help="the text cases' encoder: a model card name or file (e.g. one whose id is the directory "
                         "bench/encoders.py --prepare mpnet writes)")
    ap.add_argument("--fortunes", default="science,politics", help="the fortunes case's two categories (Debian's fortunes)")
    ap.add_argument("--debian", default="games,science", help="the debian case's two archive sections (apt's package lists)")
    ap.add_argument("--relax-ab", action="store_true",
                    help="text: invert the same targets again without the relaxed sentence's words (word_relax_steps 0), side by side")
    ap.add_argument("--relax-b", default=None, metavar="JSON",
                    help='text: with --relax-ab, the recipe change of the second inversion instead (e.g. \'{"word_relax_length": [12, 24]}\')')
    ap.add_argument("--cache", default=None, metavar="DIR",
                    help="embedding cache kept between runs (default: a fresh temporary one, so every run embeds its corpora "
                         "again; the text case's corpus is all of SST-2 train)")
    ap.add_argument("--relax-a", default=None, metavar="JSON",
                    help="text: a recipe change of the run's own inversion (the A side), e.g. the relaxed sentence's steps")
    args = ap.parse_args()
    try:
        relax_a = json.loads(args.relax_a) if args.relax_a else {}
        relax_b = json.loads(args.relax_b) if args.relax_b else {"word_relax_steps": 0}
        from pydantic import ValidationError

        from harness.invert.recipe import EvidenceRecipe
        from harness.specs.loading import validation_error

        if not isinstance(relax_a, dict) or not isinstance(relax_b, dict):
            print("error: --relax-a / --relax-b: give a JSON object of evidence-recipe fields, such as "
                  "'{\"word_relax_length\": [12, 24]}'")
            return 2
        EvidenceRecipe(**relax_a)  # both sides checked before any victim is built
        EvidenceRecipe(**{**relax_a, **relax_b})
    except json.JSONDecodeError as exc:
        print(f"error: --relax-a / --relax-b: not JSON ({exc}); give an object such as '{{\"word_relax_length\": [12, 24]}}'")
        return 2
    except ValidationError as exc:
        print(f"error: {validation_error(EvidenceRecipe, exc, '--relax-a / --relax-b').line()}")
        return 2
    cases = set(args.cases.split(","))
    sources = {"fortunes": args.fortunes.split(","), "debian": args.debian.split(",")}
    for source, cats in sources.items():
        if len(cats) != 2 or not all(cats):
            from attack_data import TEXT_SOURCES

            known = TEXT_SOURCES[source]
            print(f"error: --{source} {getattr(args, source)!r}: name two {known.what} names, comma-separated "
                  f"(e.g. {known.example})")
            return 2
    if not cases or cases - {"text", "fortunes", "debian", "pixels", "vit"}:
        print(f"error: --cases {args.cases!r}: name one or more of text, fortunes, debian, pixels, vit, comma-separated")
        return 2
    from harness.errors import HarnessError
    from harness.registry import MODELS

    try:
        text_card = MODELS.get(args.text_model)
    except HarnessError as exc:
        print(f"error: --text-model: {exc}")
        return 2
    if text_card.modality != "text":
        print(f"error: --text-model {args.text_model!r}: its modality is {text_card.modality}; name a text card")
        return 2
    data = shared_data()
    if data is None:
        print("SKIP: ../shared/data (or $RECON_SHARED_DATA) with sst2/ and cifar10/ not found")
        return 0
    import torch

    from harness.invert.recipe import EvidenceRecipe
    from harness.registry import MODELS
    from harness.specs.model_card import ModelCard
    from tests.tiny_models import build_tiny_vit

    torch.set_num_threads(args.threads)
    budget = 60 if args.quick else 300
    attack = {"name": "kkt", "params": {"m": 40, "restarts": 16, "iterations": 1500}}
    text_attack = {"name": "kkt", "params": {"m": 4 * args.n, "restarts": 16, "iterations": 1500, "brackets": 2}}
    # pixels: rounds of 16 restarts until the budget ends, later rounds reusing good step sizes
    pixel_attack = {"name": "kkt", "params": {"m": 40, "restarts": 16, "iterations": 1500, "brackets": 100,
                                              "time_budget_s": budget}}
    cache = Path(args.cache) if args.cache else scratch("rh-bench-evidence-")
    print(f"embedding cache: {cache}{'' if args.cache else ' (fresh)'}", flush=True)
    sst2 = data / "sst2" / "train-00000-of-00001.parquet"
    cifar = data / "cifar10" / "test-00000-of-00001.parquet"
    results = {}

    victim = {"transform": args.transform, "trainer": "paper"}
    if "text" in cases:
        text_case(results, "text", sst2, text_attack, cache, args.quick, victim, args.n, text_card,
                  relax=(args.relax_ab, relax_a, relax_b))
    for source, cats in sources.items():
        if source not in cases:
            continue
        path = source_parquet(source, tuple(cats))
        if path is None:
            from attack_data import TEXT_SOURCES

            print(f"== {source}: not on this machine ({TEXT_SOURCES[source].install}); skipped")
        else:
            text_case(results, source, path, text_attack, cache, args.quick, victim, args.n, text_card, cats,
                      (args.relax_ab, relax_a, relax_b))
    if "pixels" in cases:
        print("== pixels: CIFAR-10 automobile vs cat, identity ==", flush=True)
        from recipes import PIXEL_HEAD  # the benches' one pixel victim recipe (full-batch GD, lr 0.5 x 6000 steps)

        t = task("bench-pixels", "identity", cifar, "img", ["automobile", "cat"], 10, 400, PIXEL_HEAD.model_dump(), pixel_attack)
        results["pixels"], wall = run(t, MODELS.get("identity"), EvidenceRecipe(invert_top=20, invert_members=20), cache)
        print(f"  wall {wall:.0f}s")
    if "vit" in cases:
        print("== vit: CIFAR-10 through a tiny local ViT, DIP ==", flush=True)
        vit_dir = build_tiny_vit(scratch("rh-tiny-vit-"))
        card = ModelCard(name="tiny-vit", id=str(vit_dir), modality="image", pooling="cls")
        t = task("bench-vit", card.id, cifar, "img", ["automobile", "cat"], 10, 400, HEAD, attack)
        steps = 150 if args.quick else 300
        results["vit"], wall = run(t, card, EvidenceRecipe(invert_top=10, invert_members=10, dip_steps=steps), cache)
        print(f"  wall {wall:.0f}s")
    summary(results)
    return 0


def text_case(results, name, source, attack, cache, quick, victim, n, card, classes=("negative", "positive"),
              relax=(False, {}, {})):
    from harness.invert.recipe import EvidenceRecipe

    print(f"== {name}: {card.name} / {Path(source).name}, victim {victim['transform']}+{victim['trainer']}, {n} per class ==",
          flush=True)
    t = task(f"bench-{name}", card.name, source, "sentence", list(classes), n, 400, TEXT_HEAD, attack, victim)
    # word search over the words of the corpus + non-members; the member sentences are left out of
    # its vocabulary (word_members_out, the default), retrieval keeps them
    ab, relax_a, relax_b = relax
    rec = EvidenceRecipe(invert_top=20, invert_members=20, corpus=[str(source)], word_search_top=3 if quick else 10, **relax_a)
    results[name], wall = run(t, card, rec, cache)
    vo = results[name].outcomes
    print(f"  wall {wall:.0f}s; members at cosine > 0.8: real {int((vo['real'].scores.member_best > 0.8).sum())}/{2 * n}, "
          f"null {int((vo['null'].scores.member_best > 0.8).sum())}/{2 * n}")
    if ab:
        relax_ab(results[name], rec, cache, relax_b)


def relax_ab(o, rec, cache, update) -> None:
    """The same targets inverted again with the recipe changed by `update` (default: the relaxed sentence off,
    its words' share of the word search), side by side."""
    from harness.backbones.load import load_backbone
    from harness.invert.recipe import EvidenceRecipe
    from harness.pipeline.evidence import VictimEvidence, invert_stage

    ev = o.evidence["real"]
    b = VictimEvidence(ev.selection, ev.cluster, ev.baseline, ev.threshold, ev.select_s)
    b_rec = EvidenceRecipe.model_validate({**rec.model_dump(), **update})
    invert_stage(b, load_backbone(o.resolved), o.split, o.emb, o.outcomes["real"].result, b_rec, cache)
    a_side = {k: getattr(rec, k) for k in update}
    print(f"  the same targets, {a_side} (the run above) against {update}:")
    for label, inv in (("A " + json.dumps(a_side), ev.inversions), ("B " + json.dumps(update), b.inversions)):
        print(f"  -- {label}")
        word_lines([r for r in inv if r["method"] == "word-search"], ev.threshold, examples=False)


def summary(results) -> None:
    print("\n== selection: top-k precision, clustering vs lowest KKT loss (target: P@20 >= 0.8 and >= 1.5x) ==")
    for name, o in results.items():
        selection_line(name, o)

    print("\n== image inversion (mean over targets; SSIM/PSNR vs the matched member) ==")
    for name in [c for c in ("pixels", "vit") if c in results]:
        inv = results[name].evidence["real"].inversions
        for kind in ("member", "selected"):
            rows = [r for r in inv if r["target_kind"] == kind]
            if rows:
                print(f"  {name:<7}{kind:<9} {rows[0]['method']:<9} targets {len(rows):>2}  cosine {mean(r['cosine'] for r in rows):.3f} "
                      f"(min {min(r['cosine'] for r in rows):.3f})  SSIM {mean(r['ssim'] for r in rows):.3f}  "
                      f"PSNR {mean(r['psnr'] for r in rows):.1f} dB  {rows[0]['wall_s']:.2f} s/target")

    for name in [c for c in ("text", "fortunes", "debian") if c in results]:
        text_summary(name, results[name])


def text_summary(name, o) -> None:
    print(f"\n== text inversion ({name}) ==")
    ev, thr = o.evidence["real"], o.outcomes["real"].scores.threshold
    inv = ev.inversions
    passed = [r for r in inv if r["method"] == "retrieval" and r["target_kind"] == "selected" and r["target_member_cosine"] > thr]
    print(f"  retrieval (corpus = non-members + the whole source, members included): selections passing the threshold "
          f"{len(passed)}, exact member returned {sum(r['exact'] for r in passed)}/{len(passed)}")
    mem = [r for r in inv if r["method"] == "retrieval" and r["target_kind"] == "member"]
    print(f"  retrieval of true member embeddings: exact {sum(r['exact'] for r in mem)}/{len(mem)}")
    word_lines(inv, thr)


def word_lines(inv: list[dict], thr: float, examples: bool = True) -> None:
    """Word search on the members and on the selections that passed the threshold (recovered members)."""
    rows = {"member": [r for r in inv if r["method"] == "word-search" and r["target_kind"] == "member"],
            "selected": [r for r in inv if r["method"] == "word-search" and r["target_kind"] == "selected"
                         and r["target_member_cosine"] > thr]}
    for kind, rs in rows.items():
        if rs:
            print(f"  word search on {kind:<8} targets {len(rs)}: token F1 {mean(r['token_f1'] for r in rs):.3f}  "
                  f"content F1 {mean(r['content_f1'] for r in rs):.2f}  BLEU {mean(r['bleu'] for r in rs):.1f}  "
                  f"exact {sum(r['exact'] for r in rs)}  cosine {mean(r['cosine'] for r in rs):.3f}  "
                  f"{mean(r['wall_s'] for r in rs):.1f} s/target")
            per = " ".join(f"{r['token_f1']:.2f}" for r in rs)
            print(f"    token F1 per target: {per}")
        else:
            print(f"  word search on {kind:<8}: no target passed the threshold")
    if rows["member"]:
        import json

        d = json.loads(rows["member"][0]["details"])
        print(f"  word search priors: bigram weight {d.get('fluency')}, word prior weight {d.get('prior_weight')} "
              f"({d.get('prior_words')} words, trained in {d.get('prior_train_s')} s)")
    for r in (rows["member"] + rows["selected"])[:4] if examples else []:
        print(f"    {r['reference_text'][:70]!r}\n      -> {r['text'][:70]!r}  (F1 {r['token_f1']:.2f})")


if __name__ == "__main__":
    sys.exit(main())
