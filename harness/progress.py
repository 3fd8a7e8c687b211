"""Progress bars that stay readable in a terminal and quiet in logs (cron, ray job logs, CI)."""

from __future__ import annotations

import sys

from tqdm.auto import tqdm


def bar(iterable=None, **kwargs) -> tqdm:
    """tqdm with a slower refresh where stderr is not a terminal, so logs get lines, not floods."""
    if not sys.stderr.isatty():
        kwargs.setdefault("mininterval", 10.0)
        kwargs.setdefault("ncols", 100)
    kwargs.setdefault("leave", False)
    kwargs.setdefault("dynamic_ncols", sys.stderr.isatty())
    return tqdm(iterable, **kwargs)
