"""Grid expansion: dotted task-field overrides x values, validated like a task file."""

from __future__ import annotations

import copy
import itertools
from typing import Any, Iterator

from pydantic import BaseModel

from harness.errors import HarnessError, did_you_mean
from harness.specs.loading import parse
from harness.specs.task import TaskSpec

# keys under these are free-form: the attack's parameters (checked by make_attack) and the victim trainer's
# (checked by the victim builder's recipe_parts when the unit is planned to run)
FREE_DICTS = {("attack", "params"), ("victim", "params")}


def check_key(key: str) -> None:
    """A grid key must name a task field (dotted); unknown names get a did-you-mean."""
    parts = key.split(".")
    model: type[BaseModel] | None = TaskSpec
    for i, part in enumerate(parts):
        if tuple(parts[:i]) in FREE_DICTS:
            return
        if model is None:
            raise HarnessError(f"grid.{key}", part, f"{'.'.join(parts[:i])} has no sub-fields")
        fields = model.model_fields
        if part not in fields:
            raise HarnessError(
                f"grid.{key}", part, f"unknown task field{did_you_mean(part, fields)}; allowed: {', '.join(fields)}"
            )
        if part == "name":
            raise HarnessError(f"grid.{key}", part, "the task name is not a setting; list tasks under `tasks`")
        ann = fields[part].annotation
        model = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
        if tuple(parts[: i + 1]) in FREE_DICTS:
            model = None
    if tuple(parts) in FREE_DICTS:
        raise HarnessError(f"grid.{key}", key, f"give single parameters, e.g. {key}.{'m' if parts[0] == 'attack' else 'epsilon'}")


def _set(data: dict, key: str, value: Any) -> None:
    parts = key.split(".")
    for part in parts[:-1]:
        data = data.setdefault(part, {})
    data[parts[-1]] = value


def combos(grid: dict[str, list[Any]]) -> Iterator[dict[str, Any]]:
    """Every combination, in a stable order (keys sorted, values as listed)."""
    keys = sorted(grid)
    for values in itertools.product(*(grid[k] for k in keys)):
        yield dict(zip(keys, values))


def grid_size(grid: dict[str, list[Any]]) -> int:
    n = 1
    for values in grid.values():
        n *= len(values)
    return n


def check_recipe(task: TaskSpec, where: str) -> None:
    """The victim recipe must name a known transform and trainer with valid parameters, and the trainer must be
    usable here (dp-sgd needs opacus): checked at plan time, so a sweep fails with one line before any work."""
    from harness.victims.build import recipe_parts

    try:
        recipe_parts(task.victim)
    except HarnessError as exc:
        if exc.where is None:
            exc = HarnessError(exc.field, exc.value, exc.fix, where)
        raise exc from None


def located(task: TaskSpec, overrides: dict[str, Any], where: str) -> str:
    """Where a grid point's error is: the sweep, the task and the grid values."""
    shown = ", ".join(f"{k}={v}" for k, v in overrides.items())
    return f"{where} (task {task.name}, grid {shown})" if overrides else f"{where} (task {task.name})"


def apply(task: TaskSpec, overrides: dict[str, Any], where: str) -> TaskSpec:
    if not overrides:
        check_recipe(task, located(task, overrides, where))
        return task
    data = copy.deepcopy(task.model_dump(mode="json"))
    for key, value in overrides.items():
        _set(data, key, value)
    out = parse(TaskSpec, data, located(task, overrides, where))
    check_recipe(out, located(task, overrides, where))
    return out
