"""Run one task end to end (embed, train the victim, attack, score) and write result tables."""

from __future__ import annotations

from pathlib import Path

from harness.cli.console import console as make_console
from harness.cli.summary import print_summary
from harness.pipeline.run_task import plan_unit, run_unit
from harness.registry import MODELS, TASKS

def add_arguments(p) -> None:
    p.add_argument("task", help="task file (tasks/*.yaml) or registered task name")
    p.add_argument("--model", help="model card name, file or Hub id (default: the task's)")
    p.add_argument("--out", default="results", help="results directory (default: results)")
    p.add_argument("--head", help="attack this safetensors head instead of training one")
    p.add_argument("--cache", help="embedding cache directory (default: $RECON_HARNESS_CACHE or ~/.cache/recon-harness)")
    p.add_argument("--quiet", action="store_true", help="no progress output")

def main(args) -> int:
    task = TASKS.get(args.task)
    card = MODELS.get(args.model or task.model)
    task_file = Path(args.task) if Path(args.task).is_file() else TASKS.files().get(args.task)
    base_dir = task_file.resolve().parent if task_file else None  # relative data paths follow the task file
    unit, resolved = plan_unit(task, card, args.head)
    out = Path(args.out)
    output = run_unit(
        unit, resolved, out, cache_dir=Path(args.cache) if args.cache else None, base_dir=base_dir, progress=not args.quiet
    )
    print_summary(output, out, make_console())
    return 0
