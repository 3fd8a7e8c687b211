"""What produced a row: package versions, Python, device, time."""

from __future__ import annotations

import functools
import importlib.metadata
import json
import platform
import re
from datetime import datetime, timezone

PACKAGES = ["recon-harness", "torch", "transformers", "huggingface-hub", "datasets", "pyarrow", "ray", "numpy", "scikit-learn"]


@functools.lru_cache(maxsize=1)
def versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "platform": platform.platform(terse=True)}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


def device_name() -> str:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"cpu x{torch.get_num_threads()}"


def cpu_threads(device: str | None) -> int | None:
    """The torch threads a `device_name()` of a CPU run records (`cpu xN`); None for a GPU or an unknown device."""
    got = re.fullmatch(r"cpu x(\d+)", device or "")
    return int(got.group(1)) if got else None


def versions_json() -> str:
    return json.dumps({**versions(), "device": device_name()}, sort_keys=True)


def now_utc() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)
