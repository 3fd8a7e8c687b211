"""Progress bars that stay readable in a terminal and quiet in logs (cron, ray job logs, CI)."""

from __future__ import annotations

import sys

from tqdm.auto import tqdm


def bar(iterable=None, **kwargs) -> tqdm:
    """tqdm with a slower refresh where stderr is not a terminal, so logs get lines, not floods: there a bar
    first shows after 10 s, so stages shorter than that leave no empty 0% frame in the log."""
    if not sys.stderr.isatty():
        kwargs.setdefault("mininterval", 10.0)
        kwargs.setdefault("delay", 10.0)
        kwargs.setdefault("ncols", 100)
    kwargs.setdefault("leave", False)
    kwargs.setdefault("dynamic_ncols", sys.stderr.isatty())
    return tqdm(iterable, **kwargs)
