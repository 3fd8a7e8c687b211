"""Where recon-harness keeps what it caches on this machine: $RECON_HARNESS_CACHE, else ~/.cache/recon-harness."""

from __future__ import annotations

import os
from pathlib import Path


def default_cache_dir() -> Path:
    env = os.environ.get("RECON_HARNESS_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "recon-harness"
