"""Validate model cards and task files without running anything."""

from __future__ import annotations

import sys
from pathlib import Path

from harness.data.source import local_path
from harness.errors import HarnessError
from harness.registry import MODELS, TASKS, remote_code_warning
from harness.specs.loading import read_yaml


def add_arguments(p) -> None:
    p.add_argument("paths", nargs="+", help="YAML files (model cards or tasks) or folders of them")


def _files(paths: list[str]) -> list[Path]:
    out = []
    for given in paths:
        if not given.strip():  # Path('') is the working directory
            raise HarnessError("paths", given, "give a YAML file or a folder, not an empty path", where="validate")
        p = Path(given)
        found = sorted(p.glob("*.yaml")) if p.is_dir() else [p]
        if not found:  # an empty folder would otherwise pass, checking nothing
            raise HarnessError("paths", str(p), "no YAML files under this folder (validate reads its *.yaml); "
                               "give model card or task files, or a folder holding them", where="validate")
        out += found
    return out


def validate_file(path: Path) -> str:
    """'model card' or 'task'; raises HarnessError on the first problem. A card that turns on
    trust_remote_code (or a task whose card does) is valid but named in a warning on stderr."""
    data = read_yaml(path)
    if "modality" in data or "pooling" in data or path.parent.name == "models":
        _warn(remote_code_warning(MODELS.load_file(path), str(path)))
        return "model card"
    task = TASKS.load_file(path)
    card = MODELS.get(task.model)  # the task's model must be registered
    _warn(remote_code_warning(card, f"the model of {path}"))
    if not card.is_classifier:  # its own card trains the head: the loss must fit the classes (a checkpoint's is ce)
        from harness.errors import HarnessError
        from harness.specs.task import check_loss_fits_classes

        check_loss_fits_classes(task, HarnessError)
    from harness.attacks import make_attack

    make_attack(task.attack.name, task.attack.params)
    if task.data.format != "hub" and not local_path(task.data, path.parent).exists():
        # a warning, not an error: the data may come later (quickstart-finetuned's is written by `finetune`)
        _warn(f"recon-harness: warning: {path}: data.source = {task.data.source!r}: no such file or directory yet "
              f"(relative to {path.parent}, as run reads it); run will refuse the task until it exists")
    return "task"


def _warn(line: str | None) -> None:
    if line:
        print(line, file=sys.stderr)


def main(args) -> int:
    failed = 0
    files = _files(args.paths)
    for path in files:
        try:
            what = validate_file(path)
            print(f"ok    {path} ({what})")
        except HarnessError as exc:
            failed += 1
            print(f"error {exc.line() if exc.where else f'{path}: {exc.line()}'}", file=sys.stderr)
    if failed:
        if len(files) > 1:
            print(f"{failed} of {len(files)} files invalid", file=sys.stderr)
        return 2
    return 0
