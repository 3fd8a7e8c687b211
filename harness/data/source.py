"""Load a task's data set through `datasets` (Hub id or local Parquet / CSV / imagefolder)."""

from __future__ import annotations

from pathlib import Path

from harness.errors import HarnessError
from harness.specs.task import DataSpec


def load_rows(spec: DataSpec, base_dir: Path | None = None):
    """The named split as a datasets.Dataset, with its input and label columns checked."""
    import datasets
    from datasets.utils.logging import disable_progress_bar

    disable_progress_bar()
    source = spec.source
    if spec.format != "hub":
        path = Path(source)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        if not path.exists():
            raise HarnessError("data.source", source, "no such file or directory; give a path to the data")
        source = str(path)
    try:
        if spec.format == "hub":
            ds = datasets.load_dataset(source, split=spec.split, revision=spec.revision)
        elif spec.format == "imagefolder":
            ds = datasets.load_dataset("imagefolder", data_dir=source, split=spec.split)
        else:
            ds = datasets.load_dataset(spec.format, data_files={spec.split: source}, split=spec.split)
    except (FileNotFoundError, ConnectionError, OSError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise HarnessError(
            "data.source", spec.source, f"could not be loaded ({first}); check the id/path, split and network"
        ) from None
    for field, col in (("data.input_column", spec.input_column), ("data.label_column", spec.label_column)):
        if col not in ds.column_names:
            raise HarnessError(field, col, f"no such column; the data set has {', '.join(ds.column_names)}")
    return ds
