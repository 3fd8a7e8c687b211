"""List the registered model cards or tasks."""

from __future__ import annotations

from harness.cli.console import console as make_console
from rich.table import Table

from harness.registry import MODELS, TASKS

def add_arguments(p) -> None:
    p.add_argument("what", choices=["models", "tasks"], help="which registry to list")

def main(args) -> int:
    table = Table(title=f"registered {args.what}")
    if args.what == "models":
        for col in ("name", "id", "revision", "modality", "pooling", "normalize", "licence"):
            table.add_column(col)
        for name, path in MODELS.files().items():
            c = MODELS.load_file(path)
            table.add_row(c.name, c.id, c.revision[:12], c.modality, c.pooling, str(c.normalize), c.licence)
    else:
        for col in ("name", "model", "data", "classes", "per class", "head", "attack"):
            table.add_column(col)
        for name, path in TASKS.files().items():
            t = TASKS.load_file(path)
            table.add_row(
                t.name, t.model, t.data.source, ",".join(map(str, t.classes)), str(t.per_class),
                "-".join(map(str, t.head.widths)) + f" {t.head.loss}", t.attack.name,
            )
    make_console().print(table)
    return 0
