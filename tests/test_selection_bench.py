"""bench/selection.py's input: a bad --classes is one line and exit 2, before any data is read or victim trained."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import selection  # noqa: E402


@pytest.mark.parametrize("bad", ["1,1", "3", "1,3,5", "1,10", "a,b"])
def test_selection_bench_names_a_bad_pair_in_one_line(bad, capsys, monkeypatch):
    monkeypatch.setattr(selection, "cifar_pixels", lambda *a, **k: pytest.fail("read data for a bad --classes"))
    assert selection.main(["--classes", bad]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"--classes {bad!r}" in err and "e.g. 1,3" in err
