"""Attack name -> class. A new attack is one module plus one line in ATTACKS."""

from __future__ import annotations

from pydantic import ValidationError

from harness.attacks.base import Attack
from harness.attacks.kkt import KKT
from harness.attacks.kkt_reference import KKTReference
from harness.errors import HarnessError, did_you_mean

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
    params = dict(params or {})
    fields = cls.Params.model_fields
    for key in params:
        if key not in fields:
            raise HarnessError(
                f"{name}.{key}", params[key],
                f"unknown parameter{did_you_mean(key, fields)}; allowed: {', '.join(sorted(fields))}",
            )
    try:
        return cls(cls.Params(**params))
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err.get("loc", ()) if x != "__root__")
        field = f"{name}.{loc}" if loc else name
        value = err.get("input") if loc else params
        allowed = _allowed(cls, loc.split(".")[0]) if loc else ""
        raise HarnessError(field, value, err.get("msg", "invalid") + allowed) from None


def _allowed(cls: type[Attack], field: str) -> str:
    info = cls.Params.model_fields.get(field)
    return f" ({field}: {info.description})" if info is not None and info.description else ""
