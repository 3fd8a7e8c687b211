"""Declared parameters (a pydantic model per attack or trainer) checked up front, as one-line errors."""

from __future__ import annotations

from pydantic import BaseModel, ValidationError

from harness.errors import HarnessError, did_you_mean


def validated_params(model: type[BaseModel], params: dict, prefix: str) -> BaseModel:
    """`model(**params)`, or a HarnessError naming `prefix.FIELD`, the value and the fix: an unknown
    key with a did-you-mean and the allowed keys, a bad value with pydantic's reason and the field's
    description."""
    fields = model.model_fields
    for key in params:
        if key not in fields:
            raise HarnessError(
                f"{prefix}.{key}", params[key],
                f"unknown parameter{did_you_mean(key, fields)}; allowed: {', '.join(sorted(fields)) or 'none'}",
            )
    try:
        return model(**params)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err.get("loc", ()) if x != "__root__")
        info = fields.get(loc.split(".")[0]) if loc else None
        described = f" ({loc.split('.')[0]}: {info.description})" if info is not None and info.description else ""
        raise HarnessError(f"{prefix}.{loc}" if loc else prefix, err.get("input") if loc else params,
                           err.get("msg", "invalid") + described) from None
