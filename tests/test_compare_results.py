"""bench/compare_results.py pairs rows by what they are about, not by file name or finishing order."""

import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]


def write(root: Path, files: dict[str, list[dict]]) -> Path:
    (root / "victims").mkdir(parents=True)
    for name, rows in files.items():
        pq.write_table(pa.Table.from_pylist(rows), root / "victims" / name)
    return root


def compare(a: Path, b: Path) -> tuple[int, str]:
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "compare_results.py"), str(a), str(b)],
                          capture_output=True, text=True)
    return done.returncode, done.stdout


def test_rows_are_paired_by_what_they_describe_not_by_file_name(tmp_path):
    one = {"recipe": "a", "seed": 0, "tpr": 0.5, "unit_id": "x1"}
    two = {"recipe": "b", "seed": 0, "tpr": 0.9, "unit_id": "x2"}
    a = write(tmp_path / "a", {"u1.parquet": [one], "u2.parquet": [two]})
    # the same rows under other unit ids, so their files sort the other way round
    b = write(tmp_path / "b", {"u0.parquet": [{**two, "unit_id": "y0"}], "u9.parquet": [{**one, "unit_id": "y9"}]})
    assert compare(a, b) == (0, "victims: 2 rows identical\n")
    c = write(tmp_path / "c", {"u1.parquet": [one], "u2.parquet": [{**two, "tpr": 0.8}]})
    code, out = compare(a, c)
    assert code == 1 and out.startswith("victims: 2 rows differs: tpr (max 0.1")


def test_a_whole_number_that_differs_is_named_without_a_made_up_size(tmp_path):
    a = write(tmp_path / "a", {"u.parquet": [{"recipe": "a", "n_runs": 4, "tpr": 0.5}]})
    b = write(tmp_path / "b", {"u.parquet": [{"recipe": "a", "n_runs": 6, "tpr": 0.5}]})
    assert compare(a, b) == (1, "victims: 1 rows differs: n_runs\n")
