"""What both KKT attacks share: budget parameters, victim checks, run bookkeeping."""

from __future__ import annotations

import math
import random

from pydantic import Field

from harness.attacks.base import AttackParams, Victim
from harness.errors import HarnessError

# Published random-search ranges (Haim 2022 / Buzaglo 2023 W&B sweeps).
PUBLISHED_RANGES = {
    "lr": (1e-5, 1.0, "log"),
    "init_scale": (1e-6, 0.1, "log"),
    "lambda_min": (0.01, 0.5, "lin"),
    "alpha": (10.0, 500.0, "lin"),
}


class KKTParams(AttackParams):
    """Budget and candidate count shared by the KKT attacks."""

    m: int = Field(40, ge=1, le=100_000, description="candidates per restart (about 2n)")
    restarts: int = Field(8, ge=1, le=100_000, description="restarts (runs) in all")
    iterations: int = Field(2000, ge=1, le=10_000_000, description="iterations per restart (at most)")
    time_budget_s: float | None = Field(None, gt=0, description="stop starting/continuing runs after this many seconds (the first runs always take one iteration)")
    prior_weight: float = Field(1.0, ge=0, description="weight of the domain prior (box, norm) in the loss")
    curve_every: int = Field(50, ge=1, description="record the loss curve every this many iterations")


def sample_setting(rng: random.Random, name: str, fixed, ranges=PUBLISHED_RANGES) -> float:
    if fixed is not None:
        return float(fixed)
    lo, hi, spacing = ranges[name]
    if spacing == "log":
        return math.exp(rng.uniform(math.log(lo), math.log(hi)))
    return rng.uniform(lo, hi)


def check_victim(victim: Victim) -> None:
    """One-line errors for a victim the attacks cannot use, before any work."""
    d = victim.head.in_dim
    frame = victim.frame
    if frame is None or frame.mean.numel() != d or (frame.scale is not None and frame.scale.numel() != d):
        got = None if frame is None else tuple(frame.mean.shape)
        raise HarnessError(
            "victim.frame", got, f"head input dim is {d}; the frame's mean (and scale) must have {d} entries "
            "(does the head match the declared backbone?)"
        )
    if frame.scale is not None and not bool((frame.scale > 0).all()):
        raise HarnessError("victim.frame.scale", "non-positive entries", "a standardising scale must be > 0 everywhere")
    if victim.num_classes < 1:
        raise HarnessError("victim.num_classes", victim.num_classes, "must be >= 1")
    if victim.loss == "ce" and victim.head.out_dim != victim.num_classes:
        raise HarnessError("victim.head", victim.head.dims, f"a ce head needs {victim.num_classes} outputs")
    if victim.loss == "logistic" and victim.head.out_dim != 1:
        raise HarnessError("victim.head", victim.head.dims, "a logistic head has one output")
    if not victim.head.is_finite():
        raise HarnessError("victim.head", victim.head.dims, "has non-finite weights")


def default_typical_norm(victim: Victim) -> float:
    """The typical norm of a head input: the victim's (public-data) estimate in its frame, else a
    data-free guess from the frame (sqrt(d) once standardised, the centred unit sphere's radius)."""
    if victim.typical_norm:
        return float(victim.typical_norm)
    if victim.prior == "box" and victim.frame.scale is None:
        return 0.25 * (victim.box[1] - victim.box[0]) * math.sqrt(victim.dim)
    return victim.frame.typical_norm()
