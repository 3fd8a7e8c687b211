"""The one rule for registry names (task and model card names): they become result file names."""

from __future__ import annotations

import re

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$"
NAME_RE = re.compile(NAME_PATTERN)
NAME_RULE = (
    f"must be 1-100 ASCII letters, digits, '_', '.' or '-', starting with a letter or digit "
    f"(pattern {NAME_PATTERN}); rename the file or set `name:`"
)


def check_name(v: str) -> str:
    """Pydantic field validator body: a name that is safe as (part of) a file name."""
    if not NAME_RE.fullmatch(v):
        raise ValueError(NAME_RULE)
    return v


class SpecFieldError(ValueError):
    """A check across fields that names the one field to fix (not the whole spec)."""

    def __init__(self, field: str, value: object, msg: str):
        self.field, self.value, self.msg = field, value, msg
        super().__init__(f"{field} = {value!r}: {msg}")  # what pydantic shows where the spec is built directly
