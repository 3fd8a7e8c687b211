"""Rich consoles that keep tables whole when output goes to a file or a log."""

from __future__ import annotations

import sys

from rich.console import Console


def console(stderr: bool = False, quiet: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else 160
    return Console(stderr=stderr, quiet=quiet, width=width, soft_wrap=False)
