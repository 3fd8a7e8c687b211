"""Compare two results directories table by table, ignoring what legitimately differs between runs
(timings, timestamps, unit ids and settings JSON, versions, head paths).

    python bench/compare_results.py DIR_A DIR_B [--tol 0]

Prints, per table, the rows and the columns that differ (max absolute difference for floats; "differs" for
whole numbers, text and lists of another length).
Exit 0 when every compared value matches within --tol."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import pyarrow.parquet as pq

IGNORE = {"unit_id", "settings", "versions", "created_at", "head_path", "wall_s", "embed_s", "train_s", "attack_s",
          "score_s", "select_s", "device", "embed_cache_hit", "loss_curve", "run_settings", "details", "compute_s", "node"}
IGNORE_SUFFIX = ("_s",)


def rows(root: Path, table: str) -> list[dict]:
    """The table's rows in an order that does not depend on its files' names (they hold unit ids, which differ
    between runs) or on the order units finished: sorted by the row's compared text, whole-number and yes/no
    fields (the ones that say which unit, victim, seed or member a row is about)."""
    out = []
    for f in (root / table).glob("*.parquet"):
        out += pq.read_table(f).to_pylist()
    return sorted(out, key=identity)


def identity(row: dict) -> tuple:
    return tuple((k, repr(v)) for k, v in sorted(row.items())
                 if k not in IGNORE and not k.endswith(IGNORE_SUFFIX) and (v is None or isinstance(v, (str, int, bool))))


def diff(a, b, tol: float) -> float | None:
    """None when equal (within tol), else a size of the difference."""
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return float("inf")
        ds = [diff(x, y, tol) for x, y in zip(a, b)]
        ds = [d for d in ds if d is not None]
        return max(ds) if ds else None
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) and math.isnan(b):
            return None
        d = abs(a - b)
        return d if d > tol else None
    return None if a == b else float("inf")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("a", type=Path)
    ap.add_argument("b", type=Path)
    ap.add_argument("--tol", type=float, default=0.0)
    args = ap.parse_args()
    same = True
    def tables_of(root: Path) -> set[str]:
        return {p.name for p in root.iterdir() if p.is_dir() and p.name != "heads"} if root.is_dir() else set()

    tables = sorted(tables_of(args.a) | tables_of(args.b))  # a table only one side holds is a difference too
    for t in tables:
        ra, rb = rows(args.a, t), rows(args.b, t)
        if len(ra) != len(rb):
            print(f"{t}: {len(ra)} vs {len(rb)} rows")
            same = False
            continue
        cols: dict[str, float] = {}
        for x, y in zip(ra, rb):
            for k in x:
                if k in IGNORE or k.endswith(IGNORE_SUFFIX):
                    continue
                if k not in y:  # a column A has and B lacks is not 'identical'
                    cols[k] = float("inf")
                    continue
                d = diff(x[k], y[k], args.tol)
                if d is not None:
                    cols[k] = max(cols.get(k, 0.0), d)
        extra = sorted(set(rb[0]) - set(ra[0])) if ra else []
        status = "identical" if not cols else "differs: " + ", ".join(
            f"{k} (max {v:.3g})" if v != float("inf") else k for k, v in sorted(cols.items()))
        print(f"{t}: {len(ra)} rows {status}" + (f"; new columns in B: {', '.join(extra)}" if extra else ""))
        same &= not cols
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
