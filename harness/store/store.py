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
LOCK = "_sweep.lock"  # the writer's lock (harness.runner.lock): not content, so a folder holding only it is empty
SAFE = re.compile(r"^[A-Za-z0-9_\-][A-Za-z0-9_.\-]*$")  # no leading '.': result files are never hidden


def safe_name(name: str, field: str = "name") -> str:
    """`name` if it is safe as a result file's name (heads, tables), else one HarnessError line."""
    if not SAFE.match(name) or len(name) > 200:
        raise HarnessError(
            field, name, "is not safe as a result file name: use ASCII letters, digits, '_', '-' and '.' "
            "(not first), at most 200 characters",
        )
    return name


def _nearest_existing(path: Path) -> Path:
    p = path.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def check_writable_dir(path: str | Path, field: str = "--out") -> Path:
    """Fail early, writing nothing under `path`, unless `path` is (or can become) a writable directory.

    Probes by creating and removing a temporary file in the nearest existing folder, so a read-only
    or virtual file system (/proc, a full disk) is caught before any work, not after."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise HarnessError(field, str(path), "is an existing file, not a directory; give a directory path")
    base = _nearest_existing(path)
    if not base.is_dir():
        raise HarnessError(field, str(path), f"{base} is a file, so no directory can be made under it; choose another path")
    _probe(base, field, str(path))
    return path


def check_writable_file(path: str | Path, field: str = "--out", example: str = "leaderboard.md") -> Path:
    """Fail early unless `path` names a file that can be written (not a directory, in a writable folder)."""
    path = Path(path)
    if path.is_dir():
        raise HarnessError(field, str(path), f"is a directory; give a file name (e.g. {path / example})")
    base = _nearest_existing(path.parent if str(path.parent) else Path("."))
    if not base.is_dir():
        raise HarnessError(field, str(path), f"{base} is a file, so no file can be made under it; choose another path")
    _probe(base, field, str(path))
    return path


def _probe(base: Path, field: str, shown: str) -> None:
    import tempfile

    try:
        fd, probe = tempfile.mkstemp(prefix=".recon-harness-probe-", dir=base)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise HarnessError(
            field, shown, f"cannot write under {base} ({exc.strerror or type(exc).__name__}); choose a writable path"
        ) from None


def make_results_dir(root: Path) -> None:
    """A results directory that does not exist yet, made its owner's alone: it will hold the members (reports,
    inversions, reconstructions); chmod it to share. One that exists is left as it is."""
    if not root.exists():
        root.parent.mkdir(parents=True, exist_ok=True)
        root.mkdir(mode=0o700, exist_ok=True)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except BaseException:  # a full disk, an interrupt: no half-written temp file left behind
        tmp.unlink(missing_ok=True)
        raise


def _holds_anything(root: Path) -> bool:
    return root.is_dir() and any(p.name != LOCK for p in root.iterdir())


def _foreign(root: Path, field: str) -> None:
    sample = sorted(p.name for p in root.iterdir() if p.name != LOCK)[:3]
    raise HarnessError(
        field, str(root), f"is a non-empty directory ({', '.join(sample)}{', ...' if len(sample) == 3 else ''}) with no "
        f"{MARKER} marker, so it holds no recon-harness results; give a new or empty directory",
    )


def _check_marker(root: Path, field: str, fix: str) -> None:
    """The results directory's marker names this harness's schema version, else `field` is refused with `fix`."""
    try:
        marker = json.loads((root / MARKER).read_text(encoding="utf-8"))
        found = marker.get("schema_version")
        unreadable = "names no schema_version" if found is None else f"names schema_version {found!r}, not a number"
    except (json.JSONDecodeError, OSError, AttributeError, UnicodeDecodeError):
        found, unreadable = None, "is unreadable"
    if found != SCHEMA_VERSION:
        held = (f"results of schema version {found}" if isinstance(found, int) and not isinstance(found, bool)
                else f"a {MARKER} marker that {unreadable}")
        raise HarnessError(field, str(root), f"holds {held}, this harness writes {SCHEMA_VERSION}; {fix}")


class ResultStore:
    """Opening checks the schema version; writes never leave a half-written file behind."""

    @staticmethod
    def check(root: str | Path, field: str = "--out") -> None:
        """Fail early (writing nothing) if `root` cannot hold this harness's results: a file, an
        unwritable path, a non-empty folder that is not a results directory, or another schema version."""
        root = Path(root)
        check_writable_dir(root, field)
        if (root / MARKER).is_file():
            _check_marker(root, field, "use a new output directory")
        elif _holds_anything(root):
            _foreign(root, field)

    def __init__(self, root: str | Path, create: bool = True):
        self.root = Path(root)
        marker = self.root / MARKER
        if marker.is_file():
            _check_marker(self.root, "out" if create else "results", "use a new output directory" if create else
                          "read it with the recon-harness release that wrote it, or rerun into a new directory")
        elif create:
            if _holds_anything(self.root):
                _foreign(self.root, "out")
            make_results_dir(self.root)
            atomic_write_bytes(marker, json.dumps({"schema_version": SCHEMA_VERSION}).encode())
        elif not self.root.is_dir():
            what = "is a file" if self.root.exists() else "no such directory"
            raise HarnessError("results", str(self.root), f"{what}, not a results directory; give the --out directory of a run or sweep")
        else:
            raise HarnessError(
                "results", str(self.root), f"is not a results directory (no {MARKER} marker); give the --out directory of a run or sweep",
            )

    def path(self, table: str, unit_id: str, part: str = "") -> Path:
        if table not in SCHEMAS:
            raise KeyError(f"unknown table {table!r}")
        name = safe_name(unit_id + (f"-{part}" if part else ""), "unit_id")
        return self.root / table / f"{name}.parquet"

    def write(self, table: str, unit_id: str, rows: list[dict] | pa.Table, part: str = "") -> Path:
        """Rows (or a table built elsewhere, a Ray task's) -> one Parquet file, atomically; rewriting the same
        (unit, part) replaces it (idempotent)."""
        schema = SCHEMAS[table]
        tbl = rows.cast(schema) if isinstance(rows, pa.Table) else pa.Table.from_pylist(rows, schema=schema)
        path = self.path(table, unit_id, part)
        sink = pa.BufferOutputStream()
        pq.write_table(tbl, sink, compression="zstd")
        atomic_write_bytes(path, sink.getvalue().to_pybytes())
        return path

    def retire_superseded(self, unit_id: str) -> list[str]:
        """Remove the units `unit_id` supersedes (store/supersede.py); returns their ids."""
        from harness.store.supersede import retire_superseded

        return retire_superseded(self, unit_id)

    def remove_parts(self, table: str, unit_id: str, keep: Iterable[str] = ()) -> None:
        """Remove the unit's part files of `table` (UNIT-PART.parquet) other than the parts in `keep`."""
        kept = {self.path(table, unit_id, part).name for part in keep}
        for f in (self.root / table).glob(f"{safe_name(unit_id, 'unit_id')}-*.parquet"):
            if f.name not in kept:
                f.unlink(missing_ok=True)

    def remove_unit(self, table: str, unit_id: str) -> None:
        """Remove the unit's file of `table` and all its part files."""
        self.path(table, unit_id).unlink(missing_ok=True)
        self.remove_parts(table, unit_id)

    def unit_files(self, unit_id: str) -> list[Path]:
        """Every file of the unit: each table's (UNIT.parquet, UNIT-PART.parquet) and its heads' (UNIT-KIND.*)."""
        name = safe_name(unit_id, "unit_id")
        return [f for f in self.root.glob(f"*/{name}*")
                if f.is_file() and (f.name.rsplit(".", 1)[0] == name or f.name.startswith(name + "-"))]

    def has(self, table: str, unit_id: str, part: str = "") -> bool:
        return self.path(table, unit_id, part).is_file()

    def files(self, table: str, prefix: str = "") -> list[Path]:
        """The table's files, or those of the units whose ids start with `prefix` (a safe name: no glob characters)."""
        return sorted((self.root / table).glob(f"{safe_name(prefix, 'prefix') if prefix else ''}*.parquet"))

    def read(self, table: str, columns: Iterable[str] | None = None, prefix: str = "") -> pa.Table:
        schema = SCHEMAS[table]
        files = self.files(table, prefix)
        if not files:
            return schema.empty_table() if columns is None else schema.empty_table().select(list(columns))
        parts = []
        for f in files:
            try:
                parts.append(pq.read_table(f, columns=list(columns) if columns else None, schema=schema))
            except (pa.ArrowException, OSError) as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                first = first.split(": ", 1)[-1].split(". ")[0][:120]  # the reason, not the path again
                raise HarnessError(
                    "results", str(f), f"is not a readable {table} table ({first}); delete it and rerun "
                    "the unit that wrote it (or give another results directory)",
                ) from None
        return pa.concat_tables(parts)
