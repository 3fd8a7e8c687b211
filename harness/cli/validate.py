"""Validate model cards and task files without running anything."""

from __future__ import annotations

import sys
from pathlib import Path

from harness.errors import HarnessError
from harness.registry import MODELS, TASKS
from harness.specs.loading import read_yaml


def add_arguments(p) -> None:
    p.add_argument("paths", nargs="+", help="YAML files (model cards or tasks) or folders of them")


def _files(paths: list[str]) -> list[Path]:
    out = []
    for p in map(Path, paths):
        out += sorted(p.glob("*.yaml")) if p.is_dir() else [p]
    return out


def validate_file(path: Path) -> str:
    """'model card' or 'task'; raises HarnessError on the first problem."""
    data = read_yaml(path)
    if "modality" in data or "pooling" in data or path.parent.name == "models":
        MODELS.load_file(path)
        return "model card"
    task = TASKS.load_file(path)
    MODELS.get(task.model)  # the task's model must be registered
    from harness.attacks import make_attack

    make_attack(task.attack.name, task.attack.params)
    return "task"


def main(args) -> int:
    failed = 0
    for path in _files(args.paths):
        try:
            kind = validate_file(path)
            print(f"ok    {path} ({kind})")
        except HarnessError as exc:
            failed += 1
            print(f"error {exc.line() if exc.where else f'{path}: {exc.line()}'}", file=sys.stderr)
    if failed:
        print(f"{failed} invalid file(s)", file=sys.stderr)
        return 2
    return 0
