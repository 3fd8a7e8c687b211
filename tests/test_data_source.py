"""Data sources: a single local file is one split, read as 'train'."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.data.source import SINGLE_FILE_SPLIT, load_rows
from harness.errors import HarnessError
from harness.specs.task import DataSpec

FILE = Path(__file__).parent / "fixtures" / "sst2-train-400.parquet"


def test_a_single_file_is_read_as_the_train_split_and_another_split_name_is_refused():
    spec = DataSpec(source=str(FILE), input_column="sentence", label_column="label")
    assert spec.split == SINGLE_FILE_SPLIT and load_rows(spec).num_rows == 400
    with pytest.raises(HarnessError) as e:  # it was read whole and recorded as 'validation' on every row
        load_rows(spec.model_copy(update={"split": "validation"}))
    assert e.value.field == "data.split" and e.value.value == "validation"
    assert "one file, read whole as split 'train'" in e.value.line() and "split-named files" in e.value.line()
    with pytest.raises(HarnessError) as e:  # a second split of one file: named by its own field
        load_rows(spec.model_copy(update={"split": "test"}), split_field="data.nonmember_split")
    assert e.value.field == "data.nonmember_split" and "one file, one split" in e.value.line()


@pytest.mark.parametrize("asked", [{"per_class": 5000}, {"per_class": 200}, {"per_class": 100}, {"per_class": 60},
                                   {"nonmembers": 10_000}, {"per_class": 100, "nonmembers": 1}])
def test_too_few_rows_names_every_change_that_alone_would_fit_and_each_does(asked):
    """Each fix the one line offers (per_class, nonmembers, the null draw) is checked by drawing with it."""
    import re

    from harness.data.split import load_split
    from harness.registry import TASKS

    task = TASKS.get("quickstart").model_copy(update={"data": DataSpec(source=str(FILE), input_column="sentence",
                                                                       label_column="label"), **asked})
    with pytest.raises(HarnessError) as e:
        load_split(task)
    line = e.value.line()
    fixes = [({"per_class": int(n)}) for n in re.findall(r"lower per_class to at most (\d+)", line)]
    fixes += [({"nonmembers": int(n)}) for n in re.findall(r"lower nonmembers to at most (\d+)", line)]
    fixes += [{"null_victim": "shuffled"}] if "use null_victim: shuffled" in line else []
    assert fixes, line
    for fix in fixes:
        assert len(load_split(task.model_copy(update=fix)).member_rows) > 0, (line, fix)
        if "per_class" in fix or "nonmembers" in fix:  # the most that fits: one more does not
            key = next(iter(fix))
            with pytest.raises(HarnessError):
                load_split(task.model_copy(update={key: fix[key] + 1}))


def test_a_csv_that_is_parquet_or_holds_no_rows_is_named(tmp_path):
    spec = DataSpec(source=str(FILE), format="csv", input_column="sentence", label_column="label")
    with pytest.raises(HarnessError) as e:  # datasets said: a UTF-8 decode error
        load_rows(spec)
    assert e.value.field == "data.format" and "is a Parquet file; set data.format: parquet" in e.value.line()
    for text, said in (("sentence,label\n", "holds 0 rows"), ("", "holds no header and 0 rows")):
        empty = tmp_path / "empty.csv"
        empty.write_text(text)
        with pytest.raises(HarnessError) as e:  # datasets said: 'Instruction "train" corresponds to no data!'
            load_rows(spec.model_copy(update={"source": str(empty)}))
        assert e.value.field == "data.source" and said in e.value.line()
    ok = tmp_path / "ok.csv"
    ok.write_text("sentence,label\na fine film,1\na dull one,0\n")
    assert load_rows(spec.model_copy(update={"source": str(ok)})).num_rows == 2


def test_an_integer_class_that_is_another_values_name_is_refused_as_ambiguous(tmp_path):
    """ClassLabel names ['1', '0']: the integer 1 is label value 1 (named '0') and also the name of value 0."""
    import datasets

    from harness.data.split import load_split
    from harness.specs.task import TaskSpec

    feats = datasets.Features({"sentence": datasets.Value("string"), "label": datasets.ClassLabel(names=["1", "0"])})
    datasets.Dataset.from_dict({"sentence": [f"s{i}" for i in range(20)], "label": [i % 2 for i in range(20)]},
                               features=feats).to_parquet(str(tmp_path / "d.parquet"))
    task = TaskSpec(name="t", model="m", classes=[1, 0], per_class=2, nonmembers=4, null_victim=None,
                    data={"source": str(tmp_path / "d.parquet"), "input_column": "sentence", "label_column": "label"})
    with pytest.raises(HarnessError) as e:
        load_split(task)
    assert e.value.field == "classes" and e.value.value == 1 and "ambiguous" in e.value.line()
    split = load_split(task.model_copy(update={"classes": ["1", "0"]}))  # quoted: the names
    assert split.class_names == ["1", "0"] and split.class_values == [0, 1]
    with pytest.raises(HarnessError, match="no label value 5 in the data"):
        load_split(task.model_copy(update={"classes": [5, "0"]}))


def test_a_hub_data_set_is_pinned_to_the_commit_its_revision_names_now(monkeypatch):
    """A Hub data set without a commit was loaded at whatever the Hub served, its unit id and rows said revision
    null, and a sweep took a data set changed upstream as done: where the Hub answers, the spec names the commit."""
    from types import SimpleNamespace

    from harness.data.source import pin_hub_data
    from harness.specs.task import DataSpec

    class Hub:
        calls = []

        def dataset_info(self, repo_id, revision=None):
            self.calls.append((repo_id, revision))
            return SimpleNamespace(sha="c" * 40)

    hub, spec = Hub(), DataSpec(source="org/data", format="hub", input_column="text")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    assert pin_hub_data(spec, hub).revision == "c" * 40 and hub.calls == [("org/data", None)]
    assert pin_hub_data(spec.model_copy(update={"revision": "v2"}), hub).revision == "c" * 40  # a tag: its commit
    pinned = spec.model_copy(update={"revision": "a" * 40})
    assert pin_hub_data(pinned, hub) is pinned and len(hub.calls) == 2  # a commit already: no call
    local = DataSpec(source="x.parquet", input_column="text")
    assert pin_hub_data(local, hub) is local
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert pin_hub_data(spec, hub) is spec and len(hub.calls) == 2  # offline: as it is
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")

    class Unreachable:  # the client's own transport errors are no OSError (httpx's ConnectError: a traceback)
        def dataset_info(self, repo_id, revision=None):
            raise type("ConnectError", (Exception,), {})("Name or service not known")

    assert pin_hub_data(spec, Unreachable()) is spec


def test_a_sweep_pins_each_units_hub_data_after_its_grid(tmp_path, monkeypatch):
    """The grid may set data.source or data.revision: each unit's data is pinned after it (the task was pinned
    first, and a grid over data.revision left a branch name, over data.source another repository's commit)."""
    from types import SimpleNamespace

    import yaml

    from harness.sweep.plan import plan_sweep
    from harness.sweep.spec import load_sweep

    class Hub:
        def dataset_info(self, repo_id, revision=None):
            return SimpleNamespace(sha=(repo_id[-1] + (revision or "m")[0]) * 20)

    task = {"name": "t", "model": "identity", "classes": [0, 1], "per_class": 2, "nonmembers": 4,
            "data": {"source": "org/a", "format": "hub", "input_column": "img"}}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"models": ["identity"], "tasks": [task],
                                    "grid": {"data.source": ["org/a", "org/b"], "data.revision": ["main", "v2"]}}))
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    got = sorted((u.unit.task.data.source, u.unit.task.data.revision) for u in plan_sweep(load_sweep(path), path, Hub()).units())
    assert got == [("org/a", "am" * 20), ("org/a", "av" * 20), ("org/b", "bm" * 20), ("org/b", "bv" * 20)]


def test_local_data_leaves_no_copy_in_the_datasets_cache():
    """A team's data file read through datasets: no Arrow copy of it stays in ~/.cache/huggingface (HF_HOME here)."""
    import os

    from tests.conftest import CIFAR, SST2

    home = Path(os.environ["HF_HOME"])
    before = {p for p in home.rglob("*") if p.is_file()}
    for source, col in ((SST2, "sentence"), (CIFAR, "img")):
        ds = load_rows(DataSpec(source=str(source), input_column=col, label_column="label"))
        assert ds.num_rows > 0 and ds[0][col] is not None
    assert {p for p in home.rglob("*") if p.is_file()} == before



def test_the_private_data_cache_goes_when_the_process_ends(tmp_path):
    """Prepared under the harness's cache, owner-only, one folder per process, removed at exit; a folder left by a
    process that was killed (a sweep's actors) goes when the next process starts there."""
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT, SST2

    stale = tmp_path / "data" / "999999999-left"  # no such process
    stale.mkdir(parents=True)
    (stale / "copy.arrow").write_bytes(b"x")
    code = ("from harness.data.source import load_rows; from harness.specs.task import DataSpec; import os, glob; "
            f"load_rows(DataSpec(source={str(SST2)!r}, input_column='sentence', label_column='label')); "
            "print(len(glob.glob(os.path.join(os.environ['RECON_HARNESS_CACHE'], 'data', '*', '*'))))")
    env = {**os.environ, "RECON_HARNESS_CACHE": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert int(out.stdout.strip()) > 0  # prepared there while the process ran (the stale folder already gone)
    assert not list((tmp_path / "data").iterdir())  # and removed at its exit


def test_the_cache_root_follows_xdg_and_one_that_cannot_be_made_is_one_line(tmp_path, monkeypatch):
    import pytest

    from harness.cache_dir import default_cache_dir
    from harness.data import source
    from harness.errors import HarnessError

    monkeypatch.delenv("RECON_HARNESS_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "recon-harness"
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setenv("RECON_HARNESS_CACHE", str(tmp_path / "file" / "cache"))
    monkeypatch.setattr(source, "_PRIVATE", [])
    with pytest.raises(HarnessError, match="set RECON_HARNESS_CACHE to a writable folder") as err:
        source._private_cache()
    assert err.value.line().startswith("RECON_HARNESS_CACHE = ")
