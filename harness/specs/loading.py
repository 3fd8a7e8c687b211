"""Read a YAML spec file into a pydantic model; every failure becomes one HarnessError line."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from harness.errors import HarnessError, did_you_mean
from harness.specs.names import SpecFieldError

M = TypeVar("M", bound=BaseModel)


class _UniqueKeys(yaml.SafeLoader):
    """safe_load that refuses a key given twice in one mapping (YAML keeps the last: `seed: 0` then `seed: 3` ran
    with 3, silently)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, str) and key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"key {key!r} given twice", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if path.is_dir():
        raise HarnessError("file", str(path), "is a directory; give a .yaml file")
    if not path.is_file():
        raise HarnessError("file", str(path), "no such file; check the path")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise HarnessError("file", str(path), f"cannot be read ({exc.strerror or exc}); check its permissions") from None
    if b"\0" in raw[:65536]:
        raise HarnessError("file", str(path), "is a binary file, not YAML; give a task or model card .yaml file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HarnessError(
            "file", str(path), f"is not UTF-8 text (byte {exc.start}); give a task or model card .yaml file"
        ) from None
    try:
        data = yaml.load(text, Loader=_UniqueKeys)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise HarnessError("yaml", where, f"YAML syntax error ({problem}); fix the file's syntax") from None
    if not isinstance(data, dict):
        raise HarnessError("file", str(path), "must hold a YAML mapping (key: value lines)")
    return data


def _model_at(model: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    """The pydantic model that owns the field at `loc` (to suggest names for unknown keys)."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int) or not (isinstance(current, type) and issubclass(current, BaseModel)):
            continue
        field = current.model_fields.get(part)
        if field is None:
            return None
        ann = field.annotation
        args = getattr(ann, "__args__", ())
        current = next((a for a in (ann, *args) if isinstance(a, type) and issubclass(a, BaseModel)), ann)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def validation_error(model: type[BaseModel], exc: ValidationError, where: str) -> HarnessError:
    """The first pydantic error as one line naming the field, the value and what is allowed.

    Unknown fields come first (a typo also makes the intended field "missing"; the typo is the fix),
    and checks across fields name the one field to change, never the whole spec."""
    errors = exc.errors()
    # of a union's members, the one the input's kind was meant for: a list is not reported as "not an integer"
    fits = [e for e in errors if _meant_for(e)]
    err = next((e for e in errors if e["type"] == "extra_forbidden"), (fits or errors)[0])
    loc = tuple(p for p in err["loc"] if not _type_tag(p))
    field = ".".join(str(p) for p in loc) or "(top level)"
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        owner = _model_at(model, loc)
        names = list(owner.model_fields) if owner else []
        msg = f"unknown field{did_you_mean(str(loc[-1]), names)}; allowed: {', '.join(names)}"
        return HarnessError(field, err.get("input"), msg, where)
    if err["type"] == "missing":
        return HarnessError(field, None, "required field is missing; add it", where)
    cause = (err.get("ctx") or {}).get("error")
    if isinstance(cause, SpecFieldError):  # its field below `loc`, unless it names its whole path itself
        at = ".".join(str(p) for p in loc)
        field = cause.field if not at or cause.field.startswith(at + ".") else f"{at}.{cause.field}"
        return HarnessError(field, cause.value, cause.msg, where)
    if err["type"] == "value_error":
        msg = msg.removeprefix("Value error, ")
    elif err["type"] == "string_type" and isinstance(err.get("input"), (int, float)) and not isinstance(err.get("input"), bool):
        msg += f"; YAML read it as a number: quote it ({loc[-1] if loc else 'field'}: \"{err['input']}\")"
    elif err["type"] in ("int_type", "int_parsing", "bool_type") and isinstance(err.get("input"), (bool, str)):
        msg += "; write true or false" if err["type"] == "bool_type" else "; write a whole number (true/false and text are not numbers)"
        msg += whole_number_hint(err.get("input"))
    return HarnessError(field, err.get("input"), msg, where)


def whole_number_hint(value) -> str:
    """YAML reads 1e3 (no dot) as text: name the number it means."""
    try:
        number = float(value) if isinstance(value, str) else None
    except ValueError:
        return ""
    return f": {value!r} is {int(number)}, write that" if number is not None and number.is_integer() else ""


_SCALAR_TAGS = ("int", "float", "str", "bool", "none")
_TAG_PREFIXES = ("constrained-", "function-", "json-or-python")


def _type_tag(part) -> bool:
    """Whether a part of a pydantic error's location names a member of a union ('list[int]', 'constrained-int',
    'int'), not a field or a user's dictionary key."""
    return isinstance(part, str) and ("[" in part or part in _SCALAR_TAGS or part.startswith(_TAG_PREFIXES))


def _meant_for(err: dict) -> bool:
    """Whether an error comes from a union member of the input's kind: a list input's error under a scalar
    member ('constrained-int') is not."""
    if not isinstance(err.get("input"), list):
        return True
    return not any(_type_tag(p) and not str(p).startswith("list[") for p in err["loc"])


def parse(model: type[M], data: dict[str, Any], where: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(model, exc, where) from None


def load_spec(model: type[M], path: str | Path) -> M:
    return parse(model, read_yaml(path), str(path))
