"""Fill a stored spec's missing fields with the schema's defaults: a field added to a spec comes with the default
that keeps the old behaviour, so a row written before it existed means that default."""

from __future__ import annotations

import typing

from pydantic import BaseModel


def _model_of(annotation) -> type[BaseModel] | None:
    """The spec class a field holds, directly or as the one model of an Optional."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    models = [a for a in typing.get_args(annotation) if isinstance(a, type) and issubclass(a, BaseModel)]
    return models[0] if len(models) == 1 else None


def with_defaults(data: dict, model: type[BaseModel]) -> dict:
    """A copy of data (a spec as JSON) with every field it lacks set to model's default, nested specs too.
    Fields without a default, and keys model does not know, are left as they are."""
    out = dict(data)
    for name, field in model.model_fields.items():
        sub = _model_of(field.annotation)
        if name not in out:
            if field.is_required():
                continue
            default = field.get_default(call_default_factory=True)
            out[name] = default.model_dump(mode="json") if isinstance(default, BaseModel) else default
        elif sub is not None and isinstance(out[name], dict):
            out[name] = with_defaults(out[name], sub)
    return out
