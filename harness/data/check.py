"""Check that a task's input column holds what its model card embeds (images or text), before any work."""

from __future__ import annotations

from harness.errors import HarnessError
from harness.specs.model_card import ModelCard


def column_kind(feature) -> str:
    """'image', 'text', or a short name of what the column holds (int64, float32, list, ...)."""
    import datasets

    if isinstance(feature, datasets.Image):
        return "image"
    if isinstance(feature, datasets.Value):
        return "text" if feature.dtype in ("string", "large_string") else feature.dtype
    if isinstance(feature, datasets.ClassLabel):
        return "class labels"
    return type(feature).__name__.lower()


def check_modality(ds, input_column: str, card: ModelCard, card_given: bool) -> None:
    """One HarnessError line when the column's kind is not the card's modality. Named field: `--model`
    when the card was given on the command line (the usual mistake), else `data.input_column`."""
    kind = column_kind(ds.features[input_column])
    if kind == card.modality:
        return
    fitting = [c for c, f in ds.features.items() if column_kind(f) == card.modality]
    holds = {"image": "images", "text": "text", "class labels": "class labels (integers)"}.get(kind, f"{kind} values")
    want = "an image" if card.modality == "image" else "a text"
    if card.modality == "image" and kind in ("binary", "large_binary", "dict") and not fitting:  # PNG bytes, say
        raise HarnessError(
            "data.input_column", input_column, f"holds {holds}, which the data does not declare as images; if they are "
            f"encoded images, save the column with the Image type (datasets: Dataset.cast_column({input_column!r}, "
            "datasets.Image()), then to_parquet) or give a folder of image files with format: imagefolder",
        )
    if card_given:
        fix = f"give {'an image' if kind == 'image' else 'a text'} model card" if kind in ("image", "text") \
            else f"use a task with {want} column"
        raise HarnessError(
            "--model", card.name, f"embeds {card.modality}, but the task's input column {input_column!r} holds {holds}; "
            f"{fix} (see `recon-harness ls models`)",
        )
    other = f" (here: {', '.join(fitting)})" if fitting else ""
    raise HarnessError(
        "data.input_column", input_column, f"holds {holds}, but model card {card.name!r} embeds {card.modality}; "
        f"name {want} column{other} or use a model card for {holds}" if kind in ("image", "text") else
        f"holds {holds}, but model card {card.name!r} embeds {card.modality}; name {want} column{other}",
    )
