"""List a registry (model cards, tasks, attacks, ...), or one entry of it with its fields or parameters."""

from __future__ import annotations

import importlib
import json
import sys
import typing
from dataclasses import dataclass
from typing import Any, Callable

from rich.markup import escape
from rich.table import Table

from harness.cli.console import console as make_console
from harness.errors import HarnessError, did_you_mean


@dataclass(frozen=True)
class Listing:
    """One listable registry: what it holds, a one-line description, and how to render it."""

    what: str  # the registry's name on the command line
    about: str  # one line: what it holds and where a task names it
    entries: Callable[[], dict[str, Any]]  # name -> entry (a spec file's path, or a class)
    rows: Callable[[dict[str, Any]], tuple[list[str], list[list[str]]]]  # (columns, one row per entry)
    detail: Callable[[str, Any], tuple[list[str], list[list[str]]]]  # (columns, rows) of one entry


# ----- registries of classes with a `name`, a docstring and a pydantic `Params` (attacks, trainers, ...)


def class_registry(ref: str) -> Callable[[], dict[str, Any]]:
    """'module:ATTR' -> a loader of that name -> class dict (imported only when listed)."""
    module, attr = ref.split(":")
    return lambda: dict(getattr(importlib.import_module(module), attr))


def first_line(doc: str | None) -> str:
    lines = [ln.strip() for ln in (doc or "").strip().splitlines()]
    return lines[0] if lines else ""


def class_rows(entries: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    rows = []
    for name, cls in entries.items():
        params = getattr(cls, "Params", None)
        n = len(params.model_fields) if params is not None else 0
        about = first_line(cls.__doc__) or first_line(_module_doc(cls)).removeprefix(f"`{name}`: ")
        rows.append([name, about, str(n)])
    return ["name", "description", "parameters"], rows


def _module_doc(cls) -> str | None:
    mod = importlib.import_module(cls.__module__)
    return mod.__doc__


def type_name(annotation: Any) -> str:
    """A short, readable type: 'int', 'float | None', 'adam | sgd | mixed', 'tuple[float, float]'."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is type(None):
        return "None"
    if annotation is Ellipsis:  # tuple[int, ...]
        return "..."
    if origin is typing.Literal:
        return " | ".join(str(a) for a in args)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return " | ".join(type_name(a) for a in args)
    if origin is not None:
        name = getattr(origin, "__name__", str(origin))
        return f"{name}[{', '.join(type_name(a) for a in args)}]" if args else name
    return getattr(annotation, "__name__", str(annotation).replace("typing.", ""))


def bounds(info) -> str:
    """The field's numeric constraints (gt / ge / lt / le), e.g. '> 0', '>= 1, <= 20'."""
    out = []
    for meta in info.metadata:
        for attr, sym in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
            v = getattr(meta, attr, None)
            if v is not None:
                out.append(f"{sym} {v}")
    return ", ".join(out)


def default_of(info) -> str:
    if info.is_required():
        return "(required)"
    value = info.default_factory() if info.default_factory is not None else info.default
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, default=str)
    return str(value)


def param_rows(params) -> list[list[str]]:
    """name, type, default, range, description of every field of a pydantic Params model."""
    return [
        [name, type_name(info.annotation), default_of(info), bounds(info), first_line(info.description)]
        for name, info in params.model_fields.items()
    ]


def class_detail(name: str, cls: Any) -> tuple[list[str], list[list[str]]]:
    params = getattr(cls, "Params", None)
    if params is None:
        return ["name", "type", "default", "range", "description"], []
    return ["name", "type", "default", "range", "description"], param_rows(params)


# ----- registries of YAML spec files (model cards, tasks)


def valid_specs(registry, entries: dict[str, Any]):
    """The specs of the files that load; each one that does not is named on stderr (one line) and left out, so one
    bad file in a search folder does not hide the others."""
    for path in entries.values():
        try:
            yield registry.load_file(path)
        except HarnessError as exc:
            said = exc.line().removeprefix(f"{path}: ")
            print(f"recon-harness: warning: left out {path}: {said} (recon-harness validate {path})", file=sys.stderr)


def _local_revision(card) -> str:
    """What a run records for a local directory now (local-<hash of its files>), or why there is none yet."""
    from pathlib import Path

    from harness.backbones.resolve import local_revision

    path = Path(card.id)
    if not (path / "config.json").is_file():
        return "local (not there yet)"
    return local_revision(path, card)


def model_rows(entries: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    from harness.registry import MODELS

    rows = []
    for c in valid_specs(MODELS, entries):
        pooling = "(its head)" if c.is_classifier else c.pooling  # a classifier's head input is set by its architecture
        revision = _local_revision(c) if c.is_local else c.revision[:12]
        rows.append([c.name, c.kind, c.id, revision, c.modality, pooling, str(c.normalize), c.licence])
    return ["name", "kind", "id", "revision", "modality", "pooling", "normalize", "licence"], rows


def task_rows(entries: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    from harness.registry import TASKS

    rows = []
    for t in valid_specs(TASKS, entries):
        rows.append([
            t.name, t.model, t.data.source, ",".join(map(str, t.classes)), str(t.per_class),
            "-".join(map(str, t.head.widths)) + f" {t.head.loss}", t.attack.name,
        ])
    return ["name", "model", "data", "classes", "per class", "head", "attack"], rows


def spec_detail(registry: str) -> Callable[[str, Any], tuple[list[str], list[list[str]]]]:
    def detail(name: str, path: Any) -> tuple[list[str], list[list[str]]]:
        import harness.registry as reg

        getattr(reg, registry).announce_shadow(name)  # as `run NAME` says it: the file shadows the project's own
        spec = getattr(reg, registry).load_file(path)
        rows = [["file", str(path)]]
        for key, value in spec.model_dump(mode="json").items():
            rows.append([key, value if isinstance(value, str) else json.dumps(value)])
        return ["field", "value"], rows

    return detail


def spec_files(registry: str) -> Callable[[], dict[str, Any]]:
    def files() -> dict[str, Any]:
        import harness.registry as reg

        return getattr(reg, registry).files()

    return files


# what -> how to list it; a new registry of Params classes is one line here
LISTINGS: dict[str, Listing] = {
    "models": Listing("models", "model cards (models/*.yaml); a task's `model:`", spec_files("MODELS"), model_rows, spec_detail("MODELS")),
    "tasks": Listing("tasks", "tasks (tasks/*.yaml); the first argument of `run`", spec_files("TASKS"), task_rows, spec_detail("TASKS")),
    "attacks": Listing("attacks", "attacks; a task's `attack.name` and `attack.params`", class_registry("harness.attacks.registry:ATTACKS"), class_rows, class_detail),
    "transforms": Listing("transforms", "input transforms a victim's owner publishes with the head", class_registry("harness.victims.transforms:TRANSFORMS"), class_rows, class_detail),
    "trainers": Listing("trainers", "victim head trainers and their parameters", class_registry("harness.victims.trainers:TRAINERS"), class_rows, class_detail),
}


def add_arguments(p) -> None:
    p.add_argument("what", nargs="?", help="which registry to list: " + ", ".join(LISTINGS) + " (none: the registries)")
    p.add_argument("name", nargs="?", help="one entry: its parameters (attacks, trainers, ...) or its fields (models, tasks)")


def listing(what: str) -> Listing:
    if what in ("recipes", "recipe"):  # two registries, crossed: say which
        raise HarnessError("ls", what, "a victim recipe is TRANSFORM+TRAINER (e.g. standardize+paper): list its parts with "
                           "recon-harness ls transforms and recon-harness ls trainers")
    if what not in LISTINGS:
        raise HarnessError("ls", what, f"unknown registry{did_you_mean(what, LISTINGS)}; known: {', '.join(LISTINGS)}")
    return LISTINGS[what]


def main(args) -> int:
    if args.what is None:  # the registries themselves
        cols, rows = ["registry", "what it holds"], [[lst.what, lst.about] for lst in LISTINGS.values()]
        title = "registries (`recon-harness ls NAME` lists one; a victim recipe is TRANSFORM+TRAINER)"
    elif args.name is None:
        lst = listing(args.what)
        cols, rows = lst.rows(lst.entries())
        title = f"registered {lst.what}: {lst.about}"
    else:
        lst = listing(args.what)
        entries = lst.entries()
        if args.what == "trainers" and args.name == "given":  # recorded on rows, never named in a task
            raise HarnessError("trainer", "given", "is not a trainer a task names: rows record it for a head attacked as "
                               "it was trained (run --head, a classifier checkpoint's own head): docs/given-heads.md")
        if args.name not in entries:
            raise HarnessError(
                lst.what.rstrip("s"), args.name,
                f"unknown {lst.what.rstrip('s')}{did_you_mean(args.name, entries)}; known: {', '.join(entries) or 'none'} "
                f"(see `recon-harness ls {lst.what}`)",
            )
        cols, rows = lst.detail(args.name, entries[args.name])
        entry = entries[args.name]
        doc = first_line(getattr(entry, "__doc__", None)) if isinstance(entry, type) else ""
        title = f"{lst.what.rstrip('s')} {args.name}" + (f": {doc}" if doc else "")
        if not rows:
            make_console().print(escape(title + " (no parameters)"))
            return 0
    table = Table(title=escape(title), title_justify="left")
    for col in cols:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*(escape(str(c)) for c in row))  # 'tuple[float, float]' is text, not markup
    make_console().print(table)
    return 0
