"""Where recon-harness keeps what it caches on this machine: $RECON_HARNESS_CACHE, else $XDG_CACHE_HOME/recon-harness,
else ~/.cache/recon-harness."""

from __future__ import annotations

import os
from pathlib import Path


def default_cache_dir() -> Path:
    env = os.environ.get("RECON_HARNESS_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache") / "recon-harness"
