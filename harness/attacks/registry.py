"""Attack name -> class. A new attack is one module plus one line in ATTACKS."""

from __future__ import annotations

from harness.attacks.base import Attack
from harness.attacks.heap import keep_freed_memory
from harness.attacks.kkt import KKT
from harness.attacks.kkt_reference import KKTReference
from harness.errors import HarnessError, did_you_mean
from harness.params import validated_params

ATTACKS: dict[str, type[Attack]] = {
    KKT.name: KKT,
    KKTReference.name: KKTReference,
}


def attack_class(name: str) -> type[Attack]:
    if name not in ATTACKS:
        raise HarnessError(
            "attack", name, f"unknown attack{did_you_mean(name, ATTACKS)}; known: {', '.join(sorted(ATTACKS))}"
        )
    return ATTACKS[name]


def make_attack(name: str, params: dict | None = None) -> Attack:
    """Build an attack with validated parameters; any bad parameter is a one-line HarnessError."""
    cls = attack_class(name)
    attack = cls(validated_params(cls.Params, dict(params or {}), name))
    keep_freed_memory()
    return attack
