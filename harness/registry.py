"""One generic registry of YAML specs (model cards, tasks) with "did you mean" errors."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable, Generic, TypeVar

from pydantic import BaseModel

from harness.errors import HarnessError, did_you_mean
from harness.specs.loading import parse, read_yaml
from harness.specs.model_card import ModelCard
from harness.specs.task import TaskSpec

M = TypeVar("M", bound=BaseModel)
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def search_dirs(sub: str, env: str) -> list[Path]:
    """$ENV (os.pathsep-separated), then ./sub, then the project's own sub folder."""
    dirs = [Path(p) for p in os.environ.get(env, "").split(os.pathsep) if p]
    dirs += [Path.cwd() / sub, PROJECT_ROOT / sub]
    seen, out = set(), []
    for d in dirs:
        r = d.resolve()
        if r not in seen and r.is_dir():
            seen.add(r)
            out.append(r)
    return out


_ANNOUNCED: set[tuple[str, str]] = set()  # (kind, name) already announced as shadowed in this process


def remote_code_warning(card: ModelCard, where: str = "") -> str | None:
    """The one-line warning for a card that turns on trust_remote_code (None when it does not)."""
    if not card.trust_remote_code:
        return None
    src = f" ({where})" if where else ""
    return (
        f"recon-harness: warning: model card {card.name!r}{src} sets trust_remote_code: true: Python code from "
        f"{card.id}@{card.revision} will run on this machine with your permissions; use it only if you trust that repository"
    )


class SpecRegistry(Generic[M]):
    def __init__(self, kind: str, model: type[M], sub: str, env: str, alias: Callable[[M], str] | None = None):
        self.kind, self.model, self.sub, self.env, self.alias = kind, model, sub, env, alias

    def _scan(self) -> tuple[dict[str, Path], dict[str, Path]]:
        """(name -> file, name -> the project's own file it shadows); earlier search dirs win."""
        out: dict[str, Path] = {}
        shadowed: dict[str, Path] = {}
        own = (PROJECT_ROOT / self.sub).resolve()
        for d in search_dirs(self.sub, self.env):
            for f in sorted(d.glob("*.yaml")) + sorted(d.glob("*.yml")):
                if f.stem not in out:
                    out[f.stem] = f
                elif d == own and out[f.stem].parent != own:
                    shadowed[f.stem] = f
        return out, shadowed

    def files(self) -> dict[str, Path]:
        """name -> file; earlier search dirs ($ENV, then ./sub) win over the project's own."""
        return self._scan()[0]

    def announce_shadow(self, name: str) -> None:
        """One stderr line (once per process) when `name` resolves to a file that shadows the project's own."""
        files, shadowed = self._scan()
        if name in shadowed and (self.kind, name) not in _ANNOUNCED:
            _ANNOUNCED.add((self.kind, name))
            print(
                f"recon-harness: note: {self.kind} {name!r} is {files[name]}, which shadows the project's "
                f"{shadowed[name]} (set by ${self.env} or ./{self.sub} in the working directory)",
                file=sys.stderr,
            )

    def load_file(self, path: str | Path) -> M:
        path = Path(path)
        data = read_yaml(path)
        if self.model is TaskSpec and "tasks" in data and "model" not in data:
            raise HarnessError(
                "file", str(path), "is a sweep file (it has `tasks:`), not a task; check it with "
                f"`recon-harness sweep {path} --dry-run`",
            )
        data.setdefault("name", path.stem)
        return parse(self.model, data, str(path))

    def all(self) -> list[M]:
        files, shadowed = self._scan()
        for name in shadowed:
            self.announce_shadow(name)
        return [self.load_file(f) for f in files.values()]

    def get(self, ref: str) -> M:
        """A spec by file path, registry name, or (for model cards) Hub id."""
        p = Path(ref)
        if ref.endswith((".yaml", ".yml")) or p.is_file():
            return self.load_file(p)
        files = self.files()
        if ref in files:
            self.announce_shadow(ref)
            return self.load_file(files[ref])
        if self.alias is not None:
            for name, f in files.items():
                spec = self.load_file(f)
                if self.alias(spec) == ref:
                    self.announce_shadow(name)
                    return spec
        names = list(files)
        hint = did_you_mean(ref, names)
        fix = f"unknown {self.kind}{hint}; known: {', '.join(names) or 'none'} (see `recon-harness ls {self.sub}`)"
        if self.model is ModelCard and "/" in ref and not hint:  # a Hub id no card names: how a model gets one
            fix += f"; for a Hub model, write a card (id: {ref}, modality, pooling: README 'Model cards') and pass its file"
        raise HarnessError(self.kind, ref, fix)


MODELS: SpecRegistry[ModelCard] = SpecRegistry("model card", ModelCard, "models", "RECON_HARNESS_MODELS", lambda c: c.id)
TASKS: SpecRegistry[TaskSpec] = SpecRegistry("task", TaskSpec, "tasks", "RECON_HARNESS_TASKS")
