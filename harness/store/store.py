"""A results directory: one Parquet file per (table, unit, part), written atomically."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from harness.errors import HarnessError
from harness.store.schemas import SCHEMA_VERSION, SCHEMAS

MARKER = "_recon_harness.json"
SAFE = re.compile(r"^[A-Za-z0-9_.\-]+$")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class ResultStore:
    """Opening checks the schema version; writes never leave a half-written file behind."""

    @staticmethod
    def check(root: str | Path) -> None:
        """Fail early (writing nothing) if `root` cannot hold this harness's results."""
        root = Path(root)
        if (root / MARKER).is_file() or (root.exists() and any(root.iterdir())):
            ResultStore(root, create=False)

    def __init__(self, root: str | Path, create: bool = True):
        self.root = Path(root)
        marker = self.root / MARKER
        if marker.is_file():
            try:
                found = json.loads(marker.read_text()).get("schema_version")
            except (json.JSONDecodeError, OSError):
                found = "unreadable"
            if found != SCHEMA_VERSION:
                raise HarnessError(
                    "out",
                    str(self.root),
                    f"holds results of schema version {found}, this harness writes {SCHEMA_VERSION}; "
                    "use a new output directory",
                )
        elif create:
            if self.root.exists() and any(self.root.iterdir()):
                raise HarnessError(
                    "out", str(self.root), "is a non-empty directory without a results marker; use a new directory"
                )
            atomic_write_bytes(marker, json.dumps({"schema_version": SCHEMA_VERSION}).encode())
        else:
            raise HarnessError("results", str(self.root), "is not a results directory (no marker); run first")

    def path(self, table: str, unit_id: str, part: str = "") -> Path:
        if table not in SCHEMAS:
            raise KeyError(f"unknown table {table!r}")
        name = unit_id + (f"-{part}" if part else "")
        if not SAFE.match(name):
            raise ValueError(f"unsafe file name {name!r}")
        return self.root / table / f"{name}.parquet"

    def write(self, table: str, unit_id: str, rows: list[dict], part: str = "") -> Path:
        """Rows -> one Parquet file; rewriting the same (unit, part) replaces it (idempotent)."""
        schema = SCHEMAS[table]
        tbl = pa.Table.from_pylist(rows, schema=schema)
        path = self.path(table, unit_id, part)
        sink = pa.BufferOutputStream()
        pq.write_table(tbl, sink, compression="zstd")
        atomic_write_bytes(path, sink.getvalue().to_pybytes())
        return path

    def has(self, table: str, unit_id: str, part: str = "") -> bool:
        return self.path(table, unit_id, part).is_file()

    def files(self, table: str) -> list[Path]:
        return sorted((self.root / table).glob("*.parquet"))

    def read(self, table: str, columns: Iterable[str] | None = None) -> pa.Table:
        schema = SCHEMAS[table]
        files = self.files(table)
        if not files:
            return schema.empty_table() if columns is None else schema.empty_table().select(list(columns))
        parts = [pq.read_table(f, columns=list(columns) if columns else None, schema=schema) for f in files]
        return pa.concat_tables(parts)
