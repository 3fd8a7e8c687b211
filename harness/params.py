"""Declared parameters (a pydantic model per attack or trainer) checked up front, as one-line errors."""

from __future__ import annotations

import re

from pydantic import BaseModel, ValidationError

from harness.errors import HarnessError, did_you_mean
from harness.specs.loading import whole_number_hint


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
    for key, value in params.items():  # pydantic reads true/false as 1/0 (m: true ran with m = 1); text such as
        # '1e-3' stays accepted: YAML reads 1e-3 without a dot as text
        if isinstance(value, bool) and not _takes(fields[key].annotation, bool):
            raise HarnessError(f"{prefix}.{key}", value, f"is true/false where a number is asked ({fields[key].description})")
    try:
        return model(**params)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err.get("loc", ()) if x != "__root__")
        if not loc:  # a check across fields: name the first stated parameter its message names, not the whole dict
            msg = err.get("msg", "invalid").removeprefix("Value error, ")
            # the stated parameter the message names first, as a whole word ('m' is not the m of 'must')
            found = [(hit.start(), k) for k in params if (hit := re.search(rf"(?<![\w.]){re.escape(k)}(?!\w)", msg))]
            named = min(found)[1] if found else None
            if named is not None:
                raise HarnessError(f"{prefix}.{named}", params[named], msg) from None
        info = fields.get(loc.split(".")[0]) if loc else None
        described = f" ({loc.split('.')[0]}: {info.description})" if info is not None and info.description else ""
        hint = whole_number_hint(err.get("input")) if err.get("type") == "int_parsing" else ""
        raise HarnessError(f"{prefix}.{loc}" if loc else prefix, err.get("input") if loc else params,
                           err.get("msg", "invalid") + hint + described) from None


def _takes(annotation, kind: type) -> bool:
    """Whether a field's type admits values of `kind` (bool or str): the type itself, or a union or literal holding one."""
    import typing

    if annotation is kind:
        return True
    return any(a is kind or isinstance(a, kind) or _takes(a, kind) for a in typing.get_args(annotation))
