"""The leaderboard's outputs: every export format parsed back, the Hub push, the failures table, --out and --format."""

from __future__ import annotations

import io
import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from harness.cli import main
from harness.leaderboard import FORMATS, build, render
from harness.leaderboard.export import push_to_hub
from harness.store import ResultStore
from tests.leaderboard_rows import _victim, results  # noqa: F401 - `results` is a fixture


class _Cells(HTMLParser):
    def __init__(self):
        super().__init__()
        self.rows, self._in = [], False

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        self._in = tag in ("td", "th")

    def handle_data(self, data):
        if self._in:
            self.rows[-1].append(data)

    def handle_endtag(self, tag):
        self._in = False


def test_every_format_parses_back(results, tmp_path):
    rows = build(results)
    for fmt in FORMATS:
        out = tmp_path / f"lb.{fmt}"
        assert main(["leaderboard", str(results), "--format", fmt, "--out", str(out)]) == 0
        data = out.read_bytes()
        assert data == render(rows, fmt)
        if fmt == "md":
            lines = data.decode().splitlines()
            header = [c.strip() for c in lines[0].strip("|").split("|")]
            first = dict(zip(header, (c.strip() for c in lines[2].strip("|").split("|"))))
            assert len(lines) == 2 + 3 and first["model"] == "vit" and first["members_at_fpr"] == "3"
        elif fmt == "csv":
            t = pacsv.read_csv(io.BytesIO(data))
            assert t.num_rows == 3 and t.column("members_at_fpr").to_pylist() == [3.0, 3.0, 1.0]
        elif fmt == "json":
            assert json.loads(data) == rows
        elif fmt == "html":
            p = _Cells()
            p.feed(data.decode())
            assert p.rows[0][:4] == ["model", "model_id", "kind", "revision"] and len(p.rows) == 4 and p.rows[1][0] == "vit"
        else:
            t = pq.read_table(out)
            assert t.to_pylist() == rows and t.schema.field("gpu_hours").metadata[b"doc"].startswith(b"attack GPU")


class LocalHub:
    """A stand-in for HfApi that 'uploads' into a local folder (the call boundary, no network)."""

    def __init__(self, root: Path):
        self.root, self.calls = root, []

    def create_repo(self, repo_id, repo_type=None, exist_ok=False, private=None):
        self.calls.append(("create_repo", repo_id, repo_type, exist_ok, private))

    def upload_folder(self, repo_id, folder_path, repo_type=None, commit_message=None):
        self.calls.append(("upload_folder", repo_id, repo_type, commit_message))
        shutil.copytree(folder_path, self.root / repo_id, dirs_exist_ok=True)
        return type("Commit", (), {"oid": "c0ffee"})()


def test_push_to_hub_uploads_every_format_to_a_dataset_repo(results, tmp_path, monkeypatch, capsys):
    hub = LocalHub(tmp_path / "hub")
    assert push_to_hub(build(results), "org/leaderboard", api=hub) == "c0ffee"
    assert hub.calls[0] == ("create_repo", "org/leaderboard", "dataset", True, True) and hub.calls[1][2] == "dataset"
    repo = tmp_path / "hub" / "org" / "leaderboard"
    assert sorted(p.name for p in repo.iterdir()) == sorted(["README.md"] + [f"leaderboard.{f}" for f in FORMATS])
    assert pq.read_table(repo / "leaderboard.parquet").num_rows == 3
    assert "data_files: leaderboard.parquet" in (repo / "README.md").read_text(encoding="utf-8")
    import harness.leaderboard.export as ex

    monkeypatch.setattr(ex, "hf_api", lambda: hub)
    monkeypatch.setattr("harness.backbones.resolve.hub_offline", lambda: False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    lb = tmp_path / "lb.md"
    assert main(["leaderboard", str(results), "--push-to-hub", "org/lb2", "--out", str(lb)]) == 2  # no token: before any work
    err = capsys.readouterr().err
    assert "no Hugging Face token" in err and len(err.strip().splitlines()) == 1 and not lb.exists()
    monkeypatch.setenv("HF_TOKEN", "hf_test_token_not_real")
    assert main(["leaderboard", str(results), "--push-to-hub", "org/lb2"]) == 0
    assert "hf_test_token_not_real" not in "".join(capsys.readouterr())
    assert (tmp_path / "hub" / "org" / "lb2" / "leaderboard.csv").is_file()
    assert hub.calls[-2][-1] is True  # a leaderboard of private data goes to a private repo unless asked otherwise
    assert main(["leaderboard", str(results), "--push-to-hub", "org/lb3", "--public"]) == 0
    assert hub.calls[-2] == ("create_repo", "org/lb3", "dataset", True, False)
    assert main(["leaderboard", str(results), "--public"]) == 2  # nothing to make public


def test_bad_leaderboard_input(tmp_path, results, capsys):
    assert main(["leaderboard", str(results), "--push-to-hub", "org/x"]) == 2  # offline in tests
    assert "HF_HUB_OFFLINE" in capsys.readouterr().err
    assert main(["leaderboard", str(results), "--format", "parquet"]) == 2
    assert main(["leaderboard", str(tmp_path / "nothing")]) == 2
    assert "not a results directory" in capsys.readouterr().err
    ResultStore(tmp_path / "empty")
    assert main(["leaderboard", str(tmp_path / "empty")]) == 2
    assert "no finished units" in capsys.readouterr().err


def _failure_store(tmp_path) -> Path:
    store = ResultStore(tmp_path / "res")
    uid, real = _victim("bert", 0, "real", 1)
    store.write("victims", uid, [real])
    base = {k: real[k] for k in ("unit_id", "task", "model", "model_id", "revision", "seed", "settings", "versions", "created_at")}
    store.write("failures", "u-failed", [{**base, "unit_id": "u-failed", "stage": "shard", "victim": "real", "shard": 3,
                                          "error_type": "RuntimeError", "message": "CUDA out of memory | retry",
                                          "traceback": "Traceback ..."}], "real-s0003")
    return tmp_path / "res"


def test_failures_go_to_out_in_its_format(tmp_path, capsys):
    res = _failure_store(tmp_path)
    for fmt in FORMATS:
        out = tmp_path / "f" / f"failures.{fmt}"
        assert main(["leaderboard", str(res), "--failures", "--out", str(out)]) == 0, capsys.readouterr().err
        assert "wrote 1 failure(s)" in capsys.readouterr().err
        data = out.read_bytes()
        if fmt == "csv":
            t = pacsv.read_csv(io.BytesIO(data))
            assert t.column("unit_id").to_pylist() == ["u-failed"] and t.column("traceback").to_pylist() == ["Traceback ..."]
        elif fmt == "json":
            (row,) = json.loads(data)
            assert row["stage"] == "shard" and row["shard"] == 3 and row["message"] == "CUDA out of memory | retry"
        elif fmt == "parquet":
            assert pq.read_table(out).column("error_type").to_pylist() == ["RuntimeError"]
        elif fmt == "md":
            lines = data.decode().splitlines()
            assert len(lines) == 3 and "u-failed" in lines[2] and "out of memory \\| retry" in lines[2]
        else:
            p = _Cells()
            p.feed(data.decode())
            assert p.rows[0][0] == "unit_id" and p.rows[1][0] == "u-failed"
    assert main(["leaderboard", str(res), "--failures", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["unit_id"] == "u-failed"
    assert main(["leaderboard", str(res), "--failures"]) == 0  # one line each, as before
    assert capsys.readouterr().out == "u-failed\tshard\treal\t3\tRuntimeError: CUDA out of memory | retry\n"
    assert main(["leaderboard", str(res), "--failures", "--push-to-hub", "org/x"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "recon-harness: error: --push-to-hub = 'org/x': pushes the leaderboard, not the failures table; "
        "leave out --failures or --push-to-hub"]


@pytest.mark.parametrize("name", ["lb.htm", "lb.txt", "lb"])
def test_an_out_extension_that_names_no_format_is_refused(results, tmp_path, capsys, name):
    out = tmp_path / name
    assert main(["leaderboard", str(results), "--out", str(out)]) == 2
    what = f"its extension .{name.split('.')[1]} names no format" if "." in name else "has no extension to name a format"
    assert capsys.readouterr().err.splitlines() == [
        f"recon-harness: error: --out = {str(out)!r}: {what} (md, csv, json, html, parquet); "
        "name the file lb.md (or .csv, .json, .html, .parquet), or give --format"]
    assert not out.exists()
    assert main(["leaderboard", str(results), "--failures", "--out", str(out)]) == 2 and not out.exists()
    capsys.readouterr()
    assert main(["leaderboard", str(results), "--format", "md", "--out", str(out)]) == 0  # said explicitly: written
    assert out.read_bytes() == render(build(results), "md")


def test_parquet_to_the_terminal_names_out(results, capsys):
    for extra in ([], ["--failures"]):
        assert main(["leaderboard", str(results), "--format", "parquet", *extra]) == 2
        assert capsys.readouterr().err.splitlines() == [
            "recon-harness: error: --format = 'parquet': writes a binary file, not text for a terminal; give --out FILE.parquet"]


def test_markdown_cells_stay_one_cell_and_carry_no_html(results):
    """A value holding a newline, '|' or HTML (class names, a card's revision, an error message) forged rows,
    columns and a heading in the markdown export, which is the Hub README a push writes."""
    from harness.leaderboard.export import render_failures

    rows = build(results)
    rows[0] = {**rows[0], "setting": "classes <script>alert(1)</script>, p|ipe\n# H <b>x</b>", "revision": "m|<b>r</b>"}
    lines = render(rows, "md").decode().splitlines()
    assert len(lines) == 2 + len(rows) and not any(line.startswith("#") for line in lines)
    cells = [c for c in lines[2].split(" | ")]
    assert len(cells) == len(lines[0].split(" | "))
    assert "<script>" not in lines[2] and "&lt;script&gt;alert(1)&lt;/script&gt;, p\\|ipe # H &lt;b&gt;x&lt;/b&gt;" in lines[2]
    failure = {"unit_id": "u", "model": "m", "task": "t", "seed": 0, "stage": "shard", "victim": "real", "shard": 1,
               "error_type": "E", "message": "<img src=x onerror=alert(1)>\nline two"}
    md = render_failures(pa.Table.from_pylist([failure]), "md").decode().splitlines()
    assert len(md) == 3 and "&lt;img src=x onerror=alert(1)&gt; line two" in md[2]


def test_failures_the_board_cannot_hold_are_named(tmp_path, capsys):
    """A setting whose every unit failed has no row to count them on: the board says so and where to look, and a
    store with failures only is not 'no finished units yet; run a sweep first'."""
    res = _failure_store(tmp_path)
    assert main(["leaderboard", str(res)]) == 0
    assert "not on the board" not in capsys.readouterr().err  # its setting has a row: counted in `failed`
    store = ResultStore(res, create=False)
    row = store.read("failures").to_pylist()[0]
    store.write("failures", "u-other", [{**row, "unit_id": "u-other", "model": "other-model"}], "train")
    assert main(["leaderboard", str(res)]) == 0
    assert "1 failed unit(s) of settings with no finished unit are not on the board" in capsys.readouterr().err
    only = ResultStore(tmp_path / "only")
    only.write("failures", "u-other", [{**row, "unit_id": "u-other"}], "train")
    assert main(["leaderboard", str(tmp_path / "only")]) == 2
    assert "no finished units: 1 failed" in capsys.readouterr().err
