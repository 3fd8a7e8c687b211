"""What produced a row: package versions, the harness's source commit, Python, device, time; content digests of
the files a unit reads (its local data, a given head)."""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import platform
import re
import subprocess
from datetime import datetime, timezone
from pathlib import Path

PACKAGES = ["recon-harness", "torch", "transformers", "tokenizers", "safetensors", "huggingface-hub", "datasets", "pyarrow",
            "ray", "numpy", "scikit-learn"]


@functools.lru_cache(maxsize=1)
def versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "platform": platform.platform(terse=True)}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "absent"
    source = source_revision()
    if source:
        out["recon-harness-source"] = source
    return out


@functools.lru_cache(maxsize=1)
def source_revision(here: Path | None = None) -> str | None:
    """The git commit the harness's code (`here`: its package folder) was imported from, '+dirty' when its files
    differ from it, a new module git does not ignore included (an editable install with local changes writes rows
    the release's version number alone would not tell apart); None outside a git checkout (an installed wheel) or
    without git."""
    here = here or Path(__file__).resolve().parent
    try:
        git = lambda *a: subprocess.run(["git", "-C", str(here), *a], capture_output=True, text=True, timeout=10)  # noqa: E731
        head = git("rev-parse", "HEAD")
        if head.returncode != 0:
            return None
        dirty = git("status", "--porcelain", "--untracked-files=normal", "--", str(here)).stdout.strip()
        return head.stdout.strip()[:12] + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def content_digest(path: str | Path) -> str:
    """sha256 (16 hex) of a file's bytes, or of a directory's files (relative names and bytes, sorted): the same
    content gives the same digest on any machine and clone, whatever the files' times."""
    path = Path(path).resolve()
    return _digest(str(path), *_stamp(path))


def _stamp(path: Path) -> tuple:
    """What decides whether a digest computed before still holds (its files' names, sizes and times)."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return tuple((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files)


@functools.lru_cache(maxsize=64)
def _digest(root: str, *stamp: tuple) -> str:
    h = hashlib.sha256()
    base = Path(root)
    for name, _, _ in stamp:
        f = Path(name)
        h.update((f.relative_to(base).as_posix() if f != base else "").encode() + b"\0")
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        h.update(b"\0")
    return h.hexdigest()[:16]


def device_name(device: str | None = None) -> str:
    """The GPU's name or `cpu xN` (the torch threads): of `device` ('cpu', 'cuda', 'cuda:1') where given, else of the
    device work goes to by default (the first GPU when one is visible)."""
    import torch

    dev = torch.device(device) if device else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"cpu x{torch.get_num_threads()}"


def cpu_threads(device: str | None) -> int | None:
    """The torch threads a `device_name()` of a CPU run records (`cpu xN`); None for a GPU or an unknown device."""
    got = re.fullmatch(r"cpu x(\d+)", device or "")
    return int(got.group(1)) if got else None


def versions_json() -> str:
    return json.dumps({**versions(), "device": device_name()}, sort_keys=True)


def now_utc() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)
