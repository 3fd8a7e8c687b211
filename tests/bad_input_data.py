"""Data files and heads the bad-input table (tests/test_bad_input.py) builds: each one a way real data goes wrong."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from safetensors.torch import save_file

from tests.conftest import CIFAR, SST2


def _parquet(d: Path, name: str, table: pa.Table) -> str:
    p = d / name
    pq.write_table(table, p)
    return str(p)


def _with_nulls(column: str) -> pa.Table:
    t = pq.read_table(SST2)
    values = t.column(column).to_pylist()
    values[7] = None
    return t.set_column(t.schema.get_field_index(column), column, pa.array(values, t.schema.field(column).type))


def _float_labels(offset: float = 0.0) -> pa.Table:
    t = pq.read_table(SST2)
    labels = [float(v) + offset for v in t.column("label").to_pylist()]
    return t.set_column(t.schema.get_field_index("label"), "label", pa.array(labels, pa.float64()))


def _copied(path: Path = SST2, column: str = "sentence") -> pa.Table:
    """A fixture with a second column `copy`, a copy of `column`."""
    t = pq.read_table(path)
    return t.append_column("copy", t.column(column))


def _text(d: Path, name: str, content: str) -> str:
    p = d / name
    p.write_text(content)
    return str(p)


def _bare_png_bytes() -> pa.Table:
    """The CIFAR fixture's PNG bytes in a plain binary column, labels as integers: written by pyarrow alone."""
    t = pq.read_table(CIFAR)
    return pa.table({"img": pa.array([r["bytes"] for r in t.column("img").to_pylist()], pa.binary()),
                     "label": t.column("label").cast(pa.int64())})


def _head(d: Path, tensors: dict, metadata: dict | None = None) -> str:
    p = d / "head.safetensors"
    save_file(tensors, str(p), metadata=metadata)
    return str(p)
