"""Load a task's data set through `datasets` (Hub id or local Parquet / CSV / imagefolder)."""

from __future__ import annotations

import glob
import os
import shutil
import tempfile
from pathlib import Path

from harness.cache_dir import default_cache_dir
from harness.errors import HarnessError
from harness.specs.task import DataSpec


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _check_local_parquet(path: Path, source: str) -> None:
    """A local Parquet file is read by pyarrow first: a damaged or empty file is named before
    `datasets` logs its own errors and tracebacks."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        rows = pq.ParquetFile(path).metadata.num_rows
    except (pa.ArrowException, OSError) as exc:
        raise HarnessError("data.source", source, f"is not a readable Parquet file ({_first_line(exc)}); give a Parquet file or set data.format") from None
    if rows == 0:
        raise HarnessError("data.source", source, "holds 0 rows; give a data set with rows")


def _check_local_csv(path: Path, source: str) -> None:
    """A local CSV file: a Parquet file given as CSV, or one with no rows under its header, named in one line
    (`datasets` reports them as a UTF-8 decode error and as 'corresponds to no data')."""
    with open(path, "rb") as f:
        head = f.read(4)
        if head == b"PAR1":
            raise HarnessError("data.format", "csv", f"{source} is a Parquet file; set data.format: parquet")
        f.seek(0)
        lines, header = 0, b""
        for line in f:  # a header and one row are enough: stop there (a large file is not read through)
            header = header or line.strip()
            lines += bool(line.strip())
            if lines == 2:
                break
    sep = next((name for mark, name in ((b";", "';'"), (b"\t", "tabs")) if mark in header), None)
    if sep and b"," not in header:  # as spreadsheet programs write it in many locales: read as one column
        raise HarnessError("data.source", source, f"is separated by {sep}, and format csv reads comma-separated "
                           "files; write it with commas (pandas: to_csv(path, index=False)) or as Parquet")
    if lines < 2:
        raise HarnessError("data.source", source, f"holds {'no header and ' if lines == 0 else ''}0 rows; give a data set with rows")


def pin_hub_data(spec: DataSpec, api=None) -> DataSpec:
    """A Hub data set pinned to the commit its `revision` (a branch or tag; none: the default branch) names now,
    where the Hub answers: the unit id, the load and the rows then name one commit, and a data set changed upstream
    is new work (a sweep took it as done and the rows said revision null). A commit already given, a local source or
    no network (HF_HUB_OFFLINE, unreachable): the spec as it is. `api`: the Hub client (tests give a fake)."""
    import re

    from harness.backbones.resolve import hub_offline

    if spec.format != "hub" or (spec.revision and re.fullmatch(r"[0-9a-f]{40}", spec.revision)) or hub_offline():
        return spec
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi()
    try:
        sha = getattr(api.dataset_info(spec.source, revision=spec.revision), "sha", None)
    except Exception:  # noqa: BLE001 - unreachable (the client's transport errors are its own), unknown or gated:
        return spec  # the load says why, with the data's own error
    return spec.model_copy(update={"revision": sha}) if sha else spec


def local_path(spec: DataSpec, base_dir: Path | None) -> Path:
    """A local data source's path: relative ones follow the task file's folder (`base_dir`)."""
    path = Path(spec.source)
    return base_dir / path if not path.is_absolute() and base_dir is not None else path


def data_digest(spec: DataSpec, base_dir: Path | None) -> str | None:
    """A local data set's content digest (its file, or every file of its directory): part of the unit id, so a
    data file changed in place makes its units new work (a sweep took them as done). None for a Hub data set (its
    `revision` pins it) or a path not there (refused when the data is read)."""
    from harness.provenance import content_digest

    if spec.format == "hub":
        return None
    path = local_path(spec, base_dir)
    return content_digest(path) if path.exists() else None


SINGLE_FILE_SPLIT = "train"  # the split name of a data set given as one Parquet or CSV file


def load_rows(spec: DataSpec, base_dir: Path | None = None, split_field: str = "data.split"):
    """The named split as a datasets.Dataset, with its input and label columns checked: present,
    at least one row, no null labels or inputs. `split_field` names the field that asked for the split."""
    import datasets
    from datasets.utils.logging import disable_progress_bar

    disable_progress_bar()
    source = spec.source
    if spec.format != "hub":
        path = local_path(spec, base_dir)
        if not path.exists():
            raise HarnessError("data.source", source, "no such file or directory; give a path to the data")
        if spec.format in ("parquet", "csv") and path.is_file():
            (_check_local_parquet if spec.format == "parquet" else _check_local_csv)(path, spec.source)
            if split_field != "data.split":
                raise HarnessError(
                    split_field, spec.split, f"{spec.source} is one file, one split; give a directory of split-named files "
                    "(train-*.parquet, test-*.parquet) or a Hub id",
                )
            if spec.split != SINGLE_FILE_SPLIT:  # it was read whatever its name, and the name recorded on the rows
                raise HarnessError(
                    split_field, spec.split, f"{spec.source} is one file, read whole as split {SINGLE_FILE_SPLIT!r}; leave "
                    f"split: {SINGLE_FILE_SPLIT}, or give a directory of split-named files (train-*.parquet, test-*.parquet)",
                )
        source = str(path)
    local = {"cache_dir": _private_cache()} if spec.format != "hub" else {}
    try:
        if spec.format == "hub":
            ds = datasets.load_dataset(source, split=spec.split, revision=spec.revision)
        # datasets reads a local path as a glob pattern: '[', '*' and '?' in a name are escaped to stand for themselves
        elif spec.format == "imagefolder" or Path(source).is_dir():  # a directory: its files name the splits
            ds = datasets.load_dataset(spec.format, data_dir=glob.escape(source), split=spec.split, **local)
        else:
            ds = datasets.load_dataset(spec.format, data_files={spec.split: glob.escape(source)}, split=spec.split, **local)
    except ValueError as exc:
        if str(exc).startswith("Unknown split"):  # datasets: 'Unknown split "x". Should be one of [...]'
            raise HarnessError(split_field, spec.split, f"no such split in {spec.source}: {_first_line(exc)}") from None
        raise HarnessError(
            "data.source", spec.source, f"could not be loaded ({_first_line(exc)}); check the id/path, format, split and network"
        ) from None
    except (FileNotFoundError, ConnectionError, OSError, datasets.exceptions.DatasetGenerationError) as exc:
        cause = exc.__cause__ if isinstance(exc, datasets.exceptions.DatasetGenerationError) and exc.__cause__ else exc
        raise HarnessError(
            "data.source", spec.source, f"could not be loaded ({_first_line(cause)}); check the id/path, format, split and network"
        ) from None
    if ds.num_rows == 0:
        raise HarnessError("data.source", spec.source, f"split {spec.split!r} holds 0 rows; give a data set with rows")
    for field, col in (("data.input_column", spec.input_column), ("data.label_column", spec.label_column)):
        if col not in ds.column_names:
            raise HarnessError(field, col, f"no such column; the data set has {', '.join(ds.column_names)}")
    for field, col, what in (("data.label_column", spec.label_column, "labels"), ("data.input_column", spec.input_column, "inputs")):
        _check_nulls(ds, field, col, what)
    return ds


_PRIVATE: list[tempfile.TemporaryDirectory] = []


def _private_cache() -> str:
    """Where `datasets` prepares local data: the team's private data, of which it would otherwise keep an Arrow copy
    in ~/.cache/huggingface for good. One folder per process under the harness's cache (owner-only; one copy of a
    file however many units read it, memory-mapped as before), removed when the process exits; the folders of
    processes that ended without that (a sweep's actors are killed) go when the next one starts here."""
    if not _PRIVATE:
        root = default_cache_dir() / "data"
        try:
            root.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise HarnessError("RECON_HARNESS_CACHE", str(root.parent), f"cannot hold the staged data ({exc.strerror or exc}); "
                               "set RECON_HARNESS_CACHE to a writable folder (it stages local data and caches embeddings)") from None
        for old in root.iterdir():
            pid = old.name.split("-", 1)[0]
            if pid.isdigit() and not _alive(int(pid)):
                shutil.rmtree(old, ignore_errors=True)
        _PRIVATE.append(tempfile.TemporaryDirectory(prefix=f"{os.getpid()}-", dir=root))
    return _PRIVATE[0].name


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: not ours to judge
        return True
    return True


def _check_nulls(ds, field: str, col: str, what: str) -> None:
    import pyarrow.compute as pc

    column = ds.data.column(col)
    if column.null_count:
        first = pc.index(pc.is_null(column), True).as_py()
        raise HarnessError(
            field, col, f"{column.null_count} of {ds.num_rows} rows have null {what} (the first is row {first}); "
            "drop or fill those rows",
        )
