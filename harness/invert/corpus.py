"""Public text corpora for retrieval: a local file (.parquet .csv .json .jsonl .txt) or a Hub data set id."""

from __future__ import annotations

import glob
from pathlib import Path

from harness.errors import HarnessError

TEXT_COLUMNS = ("sentence", "text", "content", "review", "document")
FORMATS = {".parquet": "parquet", ".csv": "csv", ".json": "json", ".jsonl": "json", ".txt": "text"}


def _column(ds, source: str, column: str | None) -> str:
    if column:
        if column not in ds.column_names:
            raise HarnessError("corpus.column", column, f"no such column in {source}; it has {', '.join(ds.column_names)}")
        return column
    for c in TEXT_COLUMNS:
        if c in ds.column_names:
            return c
    strings = [n for n, f in ds.features.items() if getattr(f, "dtype", "") in ("string", "large_string")]
    if not strings:
        raise HarnessError("corpus", source, f"has no text column ({', '.join(ds.column_names)}); name one as SOURCE:COLUMN")
    return strings[0]


def load_corpus(spec: str, base_dir: Path | None = None, split: str = "train") -> list[str]:
    """`spec` is PATH, PATH:COLUMN, HUB_ID or HUB_ID:COLUMN; returns distinct non-empty strings, in order."""
    import datasets
    from datasets.utils.logging import disable_progress_bar

    disable_progress_bar()
    source, _, column = spec.partition(":") if not Path(spec).exists() else (spec, "", "")
    path = Path(source)
    if not path.is_absolute() and base_dir is not None and (base_dir / path).exists():
        path = base_dir / path
    try:
        if path.exists():
            fmt = FORMATS.get(path.suffix.lower())
            if fmt is None:
                raise HarnessError("corpus", spec, f"unknown file type {path.suffix!r}; use one of {', '.join(FORMATS)}")
            ds = datasets.load_dataset(fmt, data_files={"train": glob.escape(str(path))}, split="train")  # a path, not a pattern
        elif source.startswith(("/", ".")) or source.endswith(tuple(FORMATS)):
            raise HarnessError("corpus", spec, "no such file; give an existing path or a Hub data set id")
        else:
            ds = datasets.load_dataset(source, split=split)
    except HarnessError:
        raise
    except Exception as exc:  # noqa: BLE001 - datasets raises many kinds; all mean "not loadable here"
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:160]
        raise HarnessError(
            "corpus", spec, f"could not be loaded ({first}); offline, only local files or data sets already in the HF cache work"
        ) from None
    col = _column(ds, spec, column or None)
    seen, out = set(), []
    for s in ds[col]:
        if isinstance(s, str) and s.strip() and s not in seen:
            seen.add(s)
            out.append(s)
    if not out:
        raise HarnessError("corpus", spec, f"column {col!r} holds no text")
    return out
