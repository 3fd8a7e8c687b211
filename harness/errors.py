"""One error type for bad input: one line naming the field, the value and the fix."""

from __future__ import annotations

import difflib
from typing import Iterable

EXIT_BAD_INPUT = 2


class HarnessError(Exception):
    """Bad input or an unsatisfiable request; the CLI prints it on one line and exits 2."""

    def __init__(self, field: str, value: object, fix: str, where: str | None = None):
        self.field, self.value, self.fix, self.where = field, value, fix, where
        super().__init__(self.line())

    def __reduce__(self):  # pickled whole (Ray sends a worker's errors to the driver): field, value and fix survive
        return type(self), (self.field, self.value, self.fix, self.where)

    def line(self) -> str:
        prefix = f"{self.where}: " if self.where else ""
        value = repr(self.value)
        if len(value) > 120:
            value = value[:117] + "..."
        return f"{prefix}{self.field} = {value}: {self.fix}".replace("\n", " ")


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """A ' (did you mean X?)' hint, or '' when nothing is close: the shortest choice that holds the name (three
    letters or more: 'tpr' -> 'tpr_at_fpr', which spelling distance would give as 'fpr'), else the closest spelling."""
    choices = list(choices)
    name = str(name)
    holding = sorted((c for c in choices if len(name) >= 3 and name.lower() in str(c).lower() and c != name), key=len)
    close = holding[:1] or difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""
