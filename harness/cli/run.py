"""Run one task (once per --recipe) end to end (embed, train the victim, attack, score, select, invert) and write result tables and a report."""

from __future__ import annotations

import sys
from pathlib import Path

from harness import cpu
from harness.backbones.load import load_backbone
from harness.cli.args import directory
from harness.cli.console import console as make_console
from harness.cli.preflight import check_outputs, check_run, warn_remote_code
from harness.cli.summary import print_summary, print_written
from harness.errors import HarnessError
from harness.heads.io import load_head
from harness.victims.frame import MEAN_KEY, SCALE_KEY
from harness.pipeline.stages import GivenHead
from harness.pipeline.plan import plan_unit
from harness.pipeline.unit import run_unit, save_unit
from harness.registry import MODELS, TASKS
from harness.runner.lock import StoreLock
from harness.victims.build import recipe_parts
from harness.victims.spec import VictimSpec

def add_arguments(p) -> None:
    p.add_argument("task", help="task file (tasks/*.yaml) or registered task name")
    p.add_argument("--model", help="model card name or file, or the Hub id a card names (default: the task's)")
    p.add_argument("--out", type=directory, help="results directory (default: results/<task name>, as sweep's)")
    p.add_argument("--head", help="attack this safetensors head instead of training one")
    p.add_argument("--cache", type=directory, help="embedding cache directory (default: $RECON_HARNESS_CACHE or ~/.cache/recon-harness)")
    p.add_argument("--corpus", action="append", default=[], metavar="SOURCE[:COLUMN]",
                   help="text: extra retrieval corpus (local file or Hub data set id); repeatable")
    p.add_argument("--recipe", action="append", default=[], metavar="TRANSFORM+TRAINER",
                   help="victim recipe, e.g. standardize+paper (default: the task's); repeat to run one unit per recipe "
                        "into the same results (recon-harness ls transforms / ls trainers)")
    p.add_argument("--no-evidence", action="store_true", help="skip selection and inversion (a report.html already in --out is rebuilt)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--threads", default=str(DEFAULT_THREADS), metavar="N|auto",
                   help=f"torch CPU threads (default: {DEFAULT_THREADS}: the fastest whenever the machine does anything "
                   "else; README, 'Threads'), or auto: the cores idle at the start. A fixed count gives the same rows "
                   "whatever the core count (rows record it)")


# Measured in README, "Threads": one thread is the fastest here whenever the machine does anything else.
DEFAULT_THREADS = 1


def set_threads(threads: int | str | None) -> int | None:
    """Apply --threads, a count or `auto` (before any work, so a bad value writes nothing); the count set."""
    if threads is None:
        return None
    if threads == "auto":
        threads = cpu.free_cores()
    else:
        try:
            threads = int(threads)
        except ValueError:
            raise HarnessError("--threads", threads, f"give a whole number >= 1 or auto (default: {DEFAULT_THREADS})") from None
    if threads < 1:
        raise HarnessError("--threads", threads, f"must be >= 1 (default: {DEFAULT_THREADS}; at most one per core helps)")
    cores = cpu.usable_cores()  # more threads than cores only contend (and thousands stall the machine)
    if threads > cores:
        raise HarnessError("--threads", threads, f"this machine has {cores} usable core{'s' if cores > 1 else ''}; "
                           f"give at most {cores}, or auto")
    import torch

    torch.set_num_threads(threads)
    return threads


def parse_recipes(values: list[str]) -> list[VictimSpec]:
    """--recipe TRANSFORM+TRAINER values, checked (names and the trainer's availability) before any work."""
    out = []
    for value in values:
        transform, plus, trainer = value.partition("+")
        if not plus or not transform or not trainer:
            raise HarnessError("--recipe", value, "write TRANSFORM+TRAINER, e.g. standardize+paper "
                               "(recon-harness ls transforms, recon-harness ls trainers)")
        try:
            recipe_parts(VictimSpec.model_construct(transform=transform, trainer=trainer, params={}))
        except HarnessError as exc:  # its fix, under the flag the user wrote
            raise HarnessError("--recipe", value, f"{exc.field.removeprefix('victim.')} {exc.value!r}: {exc.fix}") from None
        if value in values[: len(out)]:
            raise HarnessError("--recipe", value, "given twice (it would run the same unit twice); give each recipe once")
        out.append(VictimSpec(transform=transform, trainer=trainer))
    return out


def _with_params(spec: VictimSpec, stated: VictimSpec) -> VictimSpec:
    """A --recipe of the task's own trainer keeps the trainer parameters the task states (a dp-sgd task's epsilon
    was dropped for the trainer's default); another trainer's take their defaults."""
    return spec.model_copy(update={"params": stated.params}) if spec.trainer == stated.trainer else spec


def main(args) -> int:
    threads = set_threads(args.threads)
    task = TASKS.get(args.task)
    card = MODELS.get(args.model or task.model)
    task_file = Path(args.task) if Path(args.task).is_file() else TASKS.files().get(args.task)
    base_dir = task_file.resolve().parent if task_file else None  # relative data paths follow the task file
    args.out = args.out or str(Path("results") / task.name)
    check_outputs(args)  # --out and --cache before the revision is resolved (which may take the network)
    if card.is_classifier and args.recipe:
        raise HarnessError("--recipe", args.recipe[0], f"{card.name} is a classifier card: its own head is attacked as "
                           "trained; drop --recipe")
    if args.head and args.recipe:
        raise HarnessError("--recipe", args.recipe[0], "--head gives a head as trained (its frame is in its file); drop "
                           "--recipe, or drop --head to train one by that recipe")
    tasks = [task.model_copy(update={"victim": _with_params(spec, task.victim)}) for spec in parse_recipes(args.recipe)] or [task]
    given = None
    if args.head:  # loaded once: its frame names the inputs', its shape is checked against the task
        head, meta, frame = load_head(args.head, "--head")
        given = GivenHead(head, frame, meta)  # with the frame saved beside it, and what its metadata states
    planned = [plan_unit(t, card, args.head, base_dir, given) for t in tasks]
    for unit, _ in planned:
        check_run(args, unit.task, card, unit, base_dir, given)  # every input, before the first stage: one line, nothing written
    if given is not None and given.frame is None:
        print(f"note: --head {args.head} saves no input frame ({MEAN_KEY}, {SCALE_KEY}): its inputs are taken as the task's "
              f"victim.transform {planned[0][0].task.victim.transform!r} fitted on the task's members (`recon-harness ls "
              "transforms`); if it took them otherwise, save its frame with it (docs/given-heads.md)", file=sys.stderr)
    if args.corpus and card.modality != "text":
        raise HarnessError("--corpus", args.corpus[0], f"a retrieval corpus inverts text; {card.name} embeds images (their "
                           "inversion needs no corpus): drop --corpus")
    if args.corpus and args.no_evidence:  # it would be accepted and never read
        raise HarnessError("--corpus", args.corpus[0], "--no-evidence skips the inversion the corpus is for; drop one of them")
    recipe = task.evidence
    recipe = recipe.model_copy(update={"enabled": recipe.enabled and not args.no_evidence, "corpus": [*recipe.corpus, *args.corpus]})
    if recipe.enabled and recipe.corpus:  # a corpus that cannot be loaded fails before any work
        from harness.invert.corpus import load_corpus

        for spec in recipe.corpus:
            load_corpus(spec, base_dir)
    out = Path(args.out)
    warn_remote_code(card)
    console = make_console()
    if given is not None and task.null_victim and not args.quiet:  # the task asked for one: say why there is none
        console.print(f"--head: no null victim ({task.null_victim}) is trained beside a given head; the control is the "
                      "non-members' threshold", soft_wrap=True)
    if args.threads == "auto" and not args.quiet:
        console.print(f"threads: auto -> {threads} (the cores idle now)")
    memo: dict = {}  # word searches the units share (one member inverted once, whatever the recipe)
    backbone = None  # loaded once for the units of one model
    outputs = []
    with StoreLock(out, "run"):  # a sweep writing here (its shards, its resume) would lose what this run replaces
        for unit, resolved in planned:
            if backbone is None or backbone.resolved != resolved:
                backbone = load_backbone(resolved)
            output = run_unit(
                unit, resolved, out, cache_dir=Path(args.cache) if args.cache else None, base_dir=base_dir,
                progress=not args.quiet, evidence=recipe, given=given, memo=memo, backbone=backbone, write=False,
            )
            print_summary(output, None, console)
            outputs.append(output)
        for output in outputs:  # every unit succeeded: a bad input met in a later one (a recipe whose training
            save_unit(out, output)  # diverges) leaves nothing written, as one met in the first does
            print_written(output, out, console)
        if recipe.enabled or (out / "report.html").is_file():  # a report written before is rebuilt to match the rows
            from harness.report import build_report

            console.print(f"report: {build_report(out)}")
    return 0
