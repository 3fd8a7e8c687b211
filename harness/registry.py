"""One generic registry of YAML specs (model cards, tasks) with "did you mean" errors."""

from __future__ import annotations

import os
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


class SpecRegistry(Generic[M]):
    def __init__(self, kind: str, model: type[M], sub: str, env: str, alias: Callable[[M], str] | None = None):
        self.kind, self.model, self.sub, self.env, self.alias = kind, model, sub, env, alias

    def files(self) -> dict[str, Path]:
        """name -> file; earlier search dirs win."""
        out: dict[str, Path] = {}
        for d in search_dirs(self.sub, self.env):
            for f in sorted(d.glob("*.yaml")) + sorted(d.glob("*.yml")):
                out.setdefault(f.stem, f)
        return out

    def load_file(self, path: str | Path) -> M:
        path = Path(path)
        data = read_yaml(path)
        data.setdefault("name", path.stem)
        return parse(self.model, data, str(path))

    def all(self) -> list[M]:
        return [self.load_file(f) for f in self.files().values()]

    def get(self, ref: str) -> M:
        """A spec by file path, registry name, or (for model cards) Hub id."""
        p = Path(ref)
        if ref.endswith((".yaml", ".yml")) or p.is_file():
            return self.load_file(p)
        files = self.files()
        if ref in files:
            return self.load_file(files[ref])
        if self.alias is not None:
            for spec in self.all():
                if self.alias(spec) == ref:
                    return spec
        names = list(files)
        hint = did_you_mean(ref, names)
        fix = f"unknown {self.kind}{hint}; known: {', '.join(names) or 'none'} (see `recon-harness ls {self.sub}`)"
        raise HarnessError(self.kind, ref, fix)


MODELS: SpecRegistry[ModelCard] = SpecRegistry("model card", ModelCard, "models", "RECON_HARNESS_MODELS", lambda c: c.id)
TASKS: SpecRegistry[TaskSpec] = SpecRegistry("task", TaskSpec, "tasks", "RECON_HARNESS_TASKS")
