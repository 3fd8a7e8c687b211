"""The residual's loss-and-gradient pass compiled by `torch.compile`: its ~15 element-wise passes over the
(m, width) activations fused into a few loops, the matrix products unchanged. kkt compiles its whole
iteration this way (iteration.py: the pass with the penalties, the optimiser's step and the projection).

`kkt`'s `compile` setting: `off`, `on`, or `auto` (the default), which compiles only on a CPU and only when
the run's planned products are worth the one-off compile (COMPILE_WORTH_MAC: about two minutes of them at a
CPU's float32 rate), so short runs (tests, the quickstart) start at once. The gain is where the element-wise
work weighs beside the products: 1.1-1.4x per iteration at m = 40 on a 384-1000-1 head for the pass alone,
more with the whole iteration (docs/scale.md), nothing measurable at m = 1000 or on the 3072-1000-1 pixel
head. On CUDA the element-wise passes cost little
and the compiled kernels have not been measured: `auto` stays eager there, `on` compiles. The decision
depends on the settings and the head's shape alone, never on timing, so a seed gives the same run on a
machine of any speed. A compile that fails (no C++ compiler, an unsupported device) says so once and the
run goes on eager; each run records whether it ran compiled. So does a process that has compiled a pass
for more shapes than RECOMPILE_LIMIT: dynamo would run the new shape eager without a word, and the
pass asks it to fail instead (`fail_on_recompile_limit_hit`), so the fall-back is said and recorded.
"""

from __future__ import annotations

import logging
import os
import shutil
from contextlib import contextmanager
from typing import Literal

import torch

from harness.attacks.residual_grad import residual_backward, residual_forward

log = logging.getLogger(__name__)

Compile = Literal["off", "on", "auto"]
MAC_PER_S = 5e10  # a CPU core's float32 product rate, roughly (this machine's measured 53-61 G/s)
COMPILE_WORTH_MAC = 120 * MAC_PER_S  # planned multiply-adds above which `auto` compiles: ~2 min of products
PRODUCTS_PER_ITERATION = 5  # products of m x fan_in x width per layer in one loss-and-gradient pass
# graphs one process may compile a pass for (dynamo's own limit is 8 per function): kkt's iteration has one per
# head shape and form, prior and frame (iteration.py), and one more once successive halving shrinks the batch
RECOMPILE_LIMIT = 64


def planned_mac(m: int, shapes: list[tuple[int, int]], restart_iterations: float, time_budget_s: float | None = None) -> float:
    """Multiply-adds of the products a run plans: per restart-iteration ~5 m x fan_in x width per layer, every
    restart for all its iterations (successive halving only lowers it); a time budget caps it at what the
    budget buys at MAC_PER_S."""
    mac = restart_iterations * PRODUCTS_PER_ITERATION * m * sum(w * f for w, f in shapes)
    return mac if not time_budget_s else min(mac, time_budget_s * MAC_PER_S)


def wants_compile(mode: Compile, m: int, shapes: list[tuple[int, int]], restart_iterations: float,
                  time_budget_s: float | None = None, device: str = "cpu") -> bool:
    """Whether a run compiles its pass: `on`, or `auto` on a CPU where its planned products reach COMPILE_WORTH_MAC."""
    if mode != "auto":
        return mode == "on"
    return device == "cpu" and planned_mac(m, shapes, restart_iterations, time_budget_s) >= COMPILE_WORTH_MAC


def eager_pass(x, lam, gout, ht, labels, form, alphas, gram):
    """(residual per restart, its gradient in x, in lambda) for weights gout per restart."""
    total, state = residual_forward(x, lam, ht, labels, form, alphas, gram)
    gx, gl = residual_backward(state, gout)
    return total, gx, gl


class Pass:
    """The loss-and-gradient pass (or another of the iteration's passes: `fn`), eager or compiled; falls back
    to eager (once, said once) when the compile fails. A compiled call runs under its compile settings (dynamo's
    recompile limit, and failing when it is hit): set per call, or once for a loop of calls under `held()`."""

    def __init__(self, compiled: bool, fn=eager_pass, name: str = "pass"):
        self.compiled, self.fn, self.name = compiled, fn, name
        # dynamic=None: the restart count changes as successive halving prunes; the first such change
        # recompiles once with that dimension symbolic, and later ones reuse it
        self._compiled_fn = torch.compile(fn, dynamic=None) if compiled else None
        self._held = False

    @contextmanager
    def held(self):
        """The compile settings for every call inside (set and restored once: ~20 us a call otherwise)."""
        if not self.compiled or self._held:
            yield
            return
        import torch._dynamo.config as dynamo_config  # only a compiled pass needs the compiler (2 s to import)

        quiet, limit = dynamo_config.fail_on_recompile_limit_hit, dynamo_config.recompile_limit
        dynamo_config.fail_on_recompile_limit_hit = True  # for the calls only, not for the process
        dynamo_config.recompile_limit = RECOMPILE_LIMIT
        self._held = True
        try:
            yield
        finally:
            self._held = False
            dynamo_config.fail_on_recompile_limit_hit, dynamo_config.recompile_limit = quiet, limit

    def __call__(self, *args):
        if not self.compiled:
            return self.fn(*args)
        if not self._held:  # a call on its own: the settings for this call
            with self.held():
                return self(*args)
        try:
            return self._compiled_fn(*args)
        except Exception as exc:  # noqa: BLE001: any compiler failure leaves the eager pass, which is exact
            log.warning("kkt: compile: the compiled %s failed (%s); running eager", self.name, _first_line(exc))
            self.compiled = False
        return self.fn(*args)


def cxx_compiler() -> str | None:
    """The C++ compiler torch.compile's CPU backend would build with ($CXX, else g++), or None."""
    return shutil.which(os.environ.get("CXX", "g++"))


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:200]
