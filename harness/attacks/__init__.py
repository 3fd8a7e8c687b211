"""Attacks that rebuild training inputs from a head's weights.

    from harness.attacks import make_attack
    attack = make_attack("kkt", {"m": 40, "restarts": 16, "iterations": 2000})
    result = attack.reconstruct(victim, progress=True)
"""

from harness.attacks.base import Attack, AttackParams, AttackResult, RunRecord, Victim
from harness.attacks.registry import ATTACKS, attack_class, make_attack

__all__ = ["ATTACKS", "Attack", "AttackParams", "AttackResult", "RunRecord", "Victim", "attack_class", "make_attack"]
