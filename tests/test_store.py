"""Results store: every schema round-trips through Parquet; versions are checked; writes are idempotent."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pyarrow as pa
import pytest

from harness.errors import HarnessError
from harness.store import SCHEMAS, ResultStore
from harness.store.store import MARKER


def _value(field: pa.Field, i: int):
    return _sample(field.type, field.name, i)


def _sample(t: pa.DataType, name: str, i: int):
    if pa.types.is_string(t):
        return f"{name}-{i}"
    if pa.types.is_integer(t):
        return i
    if pa.types.is_floating(t):
        return i + 0.5  # exact in float32 too
    if pa.types.is_binary(t):
        return f"{name}-{i}".encode()
    if pa.types.is_boolean(t):
        return i % 2 == 0
    if pa.types.is_timestamp(t):
        return datetime(2026, 1, 1, tzinfo=timezone.utc)
    if pa.types.is_list(t):
        return [_sample(t.value_type, name, i), _sample(t.value_type, name, i + 1)]
    if pa.types.is_struct(t):
        return {f.name: _sample(f.type, f"{name}.{f.name}", i) for f in t}
    raise AssertionError(f"no sample for {t}")


@pytest.mark.parametrize("table", sorted(SCHEMAS))
def test_every_schema_round_trips(tmp_path, table):
    store = ResultStore(tmp_path / "out")
    rows = [{f.name: _value(f, i) for f in SCHEMAS[table]} for i in range(3)]
    store.write(table, "unit-a", rows)
    store.write(table, "unit-b", rows[:1])
    back = store.read(table)
    assert back.schema.equals(SCHEMAS[table], check_metadata=False)
    assert back.num_rows == 4
    assert back.slice(0, 3).to_pylist() == rows


def test_a_new_results_directory_is_its_owners_alone(tmp_path):
    """It will hold the members (inversions, reports): not readable by other users, whatever the umask."""
    ResultStore(tmp_path / "a" / "out")
    assert (tmp_path / "a" / "out").stat().st_mode & 0o077 == 0
    from harness.runner.lock import StoreLock

    with StoreLock(tmp_path / "b" / "out", "run"):  # run and sweep take the lock first: it makes the folder
        ResultStore(tmp_path / "b" / "out")
    assert (tmp_path / "b" / "out").stat().st_mode & 0o077 == 0
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine").chmod(0o755)  # one the user made: left as they made it (chmod: whatever the umask)
    ResultStore(tmp_path / "mine")
    assert (tmp_path / "mine").stat().st_mode & 0o777 == 0o755


def test_rewriting_a_unit_replaces_its_rows(tmp_path):
    store = ResultStore(tmp_path)
    row = {f.name: _value(f, 0) for f in SCHEMAS["attack_runs"]}
    store.write("attack_runs", "u1", [row, row])
    store.write("attack_runs", "u1", [row])
    assert store.read("attack_runs").num_rows == 1


def test_a_unit_retires_the_same_work_stored_under_an_older_id(tmp_path):
    # ids are content hashes; when a release changes how they are made, a rerun must replace the old rows, not sit beside them
    store = ResultStore(tmp_path)

    def unit(uid: str, settings: str, parts: tuple[str, ...] = ("",)) -> None:
        for table in ("attack_runs", "victims"):
            for part in parts:
                row = {f.name: _value(f, 0) for f in SCHEMAS[table]} | {"unit_id": uid, "settings": settings}
                store.write(table, uid, [row], part)
        (tmp_path / "heads").mkdir(exist_ok=True)
        (tmp_path / "heads" / f"{uid}-real.safetensors").write_bytes(b"x")

    unit("t-m-old000000000", '{"seed": 0}', ("", "real-0"))
    unit("t-m-other0000000", '{"seed": 1}')
    unit("t-m-new000000000", '{"seed": 0}')
    assert store.retire_superseded("t-m-new000000000") == ["t-m-old000000000"]
    assert sorted(set(store.read("victims").column("unit_id").to_pylist())) == ["t-m-new000000000", "t-m-other0000000"]
    assert sorted(store.read("attack_runs").column("unit_id").to_pylist()) == ["t-m-new000000000", "t-m-other0000000"]
    assert sorted(p.name for p in (tmp_path / "heads").iterdir()) == ["t-m-new000000000-real.safetensors", "t-m-other0000000-real.safetensors"]
    assert store.retire_superseded("t-m-new000000000") == [] and store.retire_superseded("not-written") == []
    # a unit cut short under an older id (shards and heads, no rows): its files go when the same work is done
    import pyarrow.parquet as pq

    (tmp_path / "shards").mkdir(exist_ok=True)
    for uid, seed in (("t-m-cut000000000", 0), ("t-m-cutother000", 9)):
        pq.write_table(pa.table({"unit_id": [uid], "settings": [f'{{"seed": {seed}}}']}), tmp_path / "shards" / f"{uid}-real-s0000.parquet")
        (tmp_path / "heads" / f"{uid}-real.safetensors").write_bytes(b"x")
    unit("t-m-new000000001", '{"seed": 0}')
    assert store.retire_superseded("t-m-new000000001") == ["t-m-cut000000000", "t-m-new000000000"]
    left = sorted(p.name for p in (tmp_path / "shards").iterdir())
    assert left == ["t-m-cutother000-real-s0000.parquet"]  # other work, unfinished: kept
    # settings that differ only in the task's description (text about the work) are the same work
    unit("t-m-said0000000a", '{"task": {"description": "before", "seed": 2}}')
    unit("t-m-said0000000b", '{"task": {"description": "after", "seed": 2}}')
    assert store.retire_superseded("t-m-said0000000b") == ["t-m-said0000000a"]
    # the unit id's rule for the evidence settings: inversion's are the same work, selection's are not
    unit("t-m-beam0000000a", '{"task": {"seed": 4, "evidence": {"word_beam": 8, "min_cosine": 0.7}}}')
    unit("t-m-beam0000000b", '{"task": {"seed": 4, "evidence": {"word_beam": 4, "min_cosine": 0.7}}}')
    assert store.retire_superseded("t-m-beam0000000b") == ["t-m-beam0000000a"]
    unit("t-m-beam0000000c", '{"task": {"seed": 4, "evidence": {"word_beam": 4, "min_cosine": 0.8}}}')
    assert store.retire_superseded("t-m-beam0000000c") == []
    # whether evidence ran counts, as in the unit id: a grid over evidence.enabled makes two units, which a nightly
    # sweep would otherwise recompute in turn, each retiring the other
    unit("t-m-ev00000000a", '{"task": {"seed": 5, "evidence": {"enabled": false}}}')
    unit("t-m-ev00000000b", '{"task": {"seed": 5, "evidence": {"enabled": true}}}')
    assert store.retire_superseded("t-m-ev00000000b") == []
    # a unit that failed on the data as it was (failures rows only) is retired when the same work is done on it now
    failed = {f.name: _value(f, 0) for f in SCHEMAS["failures"]} | {"unit_id": "t-m-fail0000000a", "settings": '{"seed": 3, "data_digest": "a"}'}
    store.write("failures", "t-m-fail0000000a", [failed], "train")
    unit("t-m-fail0000000b", '{"seed": 3, "data_digest": "b"}')
    assert store.retire_superseded("t-m-fail0000000b") == ["t-m-fail0000000a"]
    assert store.read("failures").num_rows == 0
    # a unit that fails retires only failures of the same work (an older release's id failing the same way): not
    # the same work done, nor failures of other work
    for uid, seed in (("t-m-oldf0000000a", 6), ("t-m-othf0000000a", 7), ("t-m-newf0000000b", 6)):
        store.write("failures", uid, [{**failed, "unit_id": uid, "settings": f'{{"seed": {seed}}}'}], "train")
    assert store.retire_superseded("t-m-newf0000000b") == ["t-m-oldf0000000a"]
    store.write("failures", "t-m-newf0000000c", [{**failed, "unit_id": "t-m-newf0000000c", "settings": '{"seed": 6}'}], "train")
    unit("t-m-donef000000a", '{"seed": 6}')
    assert store.retire_superseded("t-m-newf0000000c") == ["t-m-newf0000000b"]
    assert "t-m-donef000000a" in store.read("victims").column("unit_id").to_pylist()


def test_the_same_work_done_under_an_older_id_is_found_and_renamed(tmp_path):
    """An upgrade that changes how ids are made: the store's unit of the same work (the same data by its digest,
    whether evidence ran) takes the new id, every table's rows and the heads' files; anything less is not taken."""
    from harness.store.adopt import DoneWork, adopt_all

    store = ResultStore(tmp_path)
    settings = {"task": {"seed": 0, "description": "x", "evidence": {"word_beam": 8}}, "data_digest": "d1"}

    def unit(uid: str, s: dict) -> None:
        for table, part in (("victims", ""), ("candidates", "real"), ("inversions", "")):
            row = {f.name: _value(f, 0) for f in SCHEMAS[table]} | {"unit_id": uid, "settings": json.dumps(s)}
            store.write(table, uid, [row], part)
        (tmp_path / "heads").mkdir(exist_ok=True)
        (tmp_path / "heads" / f"{uid}-real.safetensors").write_bytes(b"w")

    unit("t-m-old000000000", settings)
    unit("t-m-nodigest0000", {**settings, "data_digest": None})  # a release before digests: the data may have changed
    unit("t-m-noevidence00", {**settings, "task": {**settings["task"], "evidence": {"enabled": False}}})
    new = {**settings, "task": {**settings["task"], "description": "y", "evidence": {"word_beam": 4}}}
    done = DoneWork(store)
    assert done.same_work("t-m-new000000000", new) == "t-m-old000000000"
    assert done.same_work("t-m-new000000000", {**new, "data_digest": "d2"}) is None  # the data changed since
    assert done.same_work("u-m-new000000000", new) is None  # another task's name
    assert adopt_all(store, [("t-m-new000000000", new)]) == [("t-m-old000000000", "t-m-new000000000")]
    assert adopt_all(store, [("t-m-new000000000", new)]) == []  # done now: nothing to take
    for table in ("victims", "candidates", "inversions"):
        ids = store.read(table).column("unit_id").to_pylist()
        assert "t-m-old000000000" not in ids and "t-m-new000000000" in ids
    assert store.has("candidates", "t-m-new000000000", "real")
    assert sorted(p.name for p in (tmp_path / "heads").iterdir()) == [
        "t-m-new000000000-real.safetensors", "t-m-nodigest0000-real.safetensors", "t-m-noevidence00-real.safetensors"]


def test_which_stored_work_a_unit_supersedes():
    from harness.store.supersede import supersedes, work_of

    def w(source, digest, seed=0):
        return work_of(json.dumps({"task": {"seed": seed, "data": {"source": source}}, "data_digest": digest}))

    assert supersedes(w("a.parquet", "d2"), w("a.parquet", "d1"))  # the file changed in place
    assert supersedes(w("a.parquet", "d1"), w("a.parquet", None))  # a row of a release before digests
    assert supersedes(w("../x/a.parquet", "d1"), w("a.parquet", "d1"))  # the same content by another path
    assert not supersedes(w("b.parquet", "d2"), w("a.parquet", "d1"))  # other data
    assert not supersedes(w("org/other", None), w("org/set", None))  # another Hub data set
    assert not supersedes(w("a.parquet", "d1", seed=1), w("a.parquet", "d1"))  # other work


def test_a_sweep_s_index_of_the_store_retires_as_reading_the_store_would(tmp_path):
    # a sweep reads the store once (StoredWork) and retires through it at each finish and failure: the same ids go
    # as when each unit reads its task's and card's rows again, and the index follows what it retired and recorded
    import shutil

    import pyarrow.parquet as pq

    from harness.store.supersede import StoredWork

    def unit(store, uid, seed, table="victims", part=""):
        row = {f.name: _value(f, 0) for f in SCHEMAS[table]} | {"unit_id": uid, "settings": f'{{"seed": {seed}}}'}
        store.write(table, uid, [row], part)

    first = ResultStore(tmp_path / "a")
    for uid, seed in (("t-m-old00000000a", 0), ("t-m-old00000000b", 1), ("t-m-keep0000000a", 2)):
        unit(first, uid, seed)
    unit(first, "t-m-oldf0000000a", 3, "failures", "train")
    unit(first, "t-m-oldf0000000b", 0, "failures", "train")
    (tmp_path / "a" / "shards").mkdir()
    pq.write_table(pa.table({"unit_id": ["t-m-cut00000000a"], "settings": ['{"seed": 1}']}),
                   tmp_path / "a" / "shards" / "t-m-cut00000000a-real-s0000.parquet")
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    second = ResultStore(tmp_path / "b")
    index = StoredWork(second)
    steps = [("t-m-new00000000a", 0, "victims"), ("t-m-newf0000000b", 3, "failures"), ("t-m-new00000000b", 1, "victims"),
             ("t-m-new00000000c", 3, "victims")]
    for uid, seed, table in steps:
        for store in (first, second):
            unit(store, uid, seed, table, "train" if table == "failures" else "")
        assert index.retire(second, uid) == first.retire_superseded(uid), uid
    assert sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*.parquet")) == sorted(
        p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.parquet"))
    assert set(index.done) == {"t-m-keep0000000a", "t-m-new00000000a", "t-m-new00000000b", "t-m-new00000000c"}
    assert not index.failed and not index.cut  # retired: newf's failure by new...c (the same work done)


def test_adopting_takes_the_latest_same_work_and_mends_what_names_the_old_id(tmp_path):
    from harness.store.adopt import adopt_all
    from harness.store.supersede import retire_for

    store = ResultStore(tmp_path)
    settings = {"task": {"seed": 0, "data": {"source": "a.parquet"}}, "data_digest": "d1"}
    for uid, day, source in (("t-m-old00000000a", 1, "a.parquet"), ("t-m-old00000000b", 2, "../a.parquet")):
        row = {f.name: _value(f, 0) for f in SCHEMAS["victims"]} | {
            "unit_id": uid, "created_at": datetime(2026, 1, day, tzinfo=timezone.utc), "head_path": f"heads/{uid}-real.safetensors",
            "settings": json.dumps({**settings, "task": {**settings["task"], "data": {"source": source}}})}
        store.write("victims", uid, [row])
    failed = {f.name: _value(f, 0) for f in SCHEMAS["failures"]} | {"unit_id": "t-m-new000000000", "settings": json.dumps(settings)}
    store.write("failures", "t-m-new000000000", [failed], "train")  # an earlier night's failure of the new id
    assert adopt_all(store, [("t-m-new000000000", settings)]) == [("t-m-old00000000b", "t-m-new000000000")]
    (v,) = store.read("victims", prefix="t-m-new").to_pylist()
    assert v["head_path"] == "heads/t-m-new000000000-real.safetensors" and store.read("failures").num_rows == 0
    assert retire_for(store, ["t-m-new000000000"]) == ["t-m-old00000000a"]  # the other old id of the same work
    assert set(store.read("victims").column("unit_id").to_pylist()) == {"t-m-new000000000"}


def test_a_marker_without_a_number_says_what_it_names(tmp_path):
    for text, said in (('{"schema_version": "1"}', "names schema_version '1', not a number"),
                       ("{}", "names no schema_version"), ("[1]", "is unreadable")):
        (tmp_path / MARKER).write_text(text)
        with pytest.raises(HarnessError) as e:
            ResultStore(tmp_path, create=False)
        assert said in e.value.line() and "schema version 1," not in e.value.line()


def test_schema_version_mismatch_is_refused(tmp_path):
    (tmp_path / MARKER).write_text(json.dumps({"schema_version": 999}))
    with pytest.raises(HarnessError) as e:
        ResultStore(tmp_path)
    assert "schema version 999" in e.value.line() and "new output directory" in e.value.line()
    with pytest.raises(HarnessError):
        ResultStore.check(tmp_path)
    with pytest.raises(HarnessError) as e:  # read (report, leaderboard): it is their input, not an output
        ResultStore(tmp_path, create=False)
    assert e.value.field == "results" and "release that wrote it" in e.value.line()
    for garbage in ("not json", "[1, 2]"):
        (tmp_path / MARKER).write_text(garbage)
        with pytest.raises(HarnessError) as e:
            ResultStore(tmp_path, create=False)
        assert f"a {MARKER} marker that is unreadable" in e.value.line()


def test_foreign_directory_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(HarnessError, match="non-empty directory"):
        ResultStore(tmp_path)


def test_bad_row_is_rejected_before_writing(tmp_path):
    store = ResultStore(tmp_path)
    with pytest.raises((pa.ArrowInvalid, pa.ArrowTypeError, KeyError, TypeError)):
        store.write("victims", "u1", [{"unit_id": "u1", "seed": "not-an-int"}])
    assert not store.files("victims")


def test_a_rewrite_cut_short_leaves_the_unit_to_do_and_no_temp_file(tmp_path, monkeypatch):
    """`run` into a results directory that has the unit: it stops counting as done before any table is rewritten,
    so a full disk or an interrupt midway leaves a unit to do, not one marked done over two runs' tables."""
    import errno

    from harness.pipeline.write import write_unit
    from harness.store import store as store_module

    store = ResultStore(tmp_path)
    row = {f.name: _value(f, 0) for f in SCHEMAS["victims"]} | {"unit_id": "u"}
    store.write("victims", "u", [row])
    real = store_module.Path.write_bytes

    def full(self, data):
        if self.parent.name == "matches":
            real(self, data[: len(data) // 2])  # part of it reached the disk
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return real(self, data)

    monkeypatch.setattr(store_module.Path, "write_bytes", full)
    tables = {name: [] for name in ("candidates", "attack_runs", "matches", "victims")}
    with pytest.raises(OSError):
        write_unit(store, "u", tables)
    assert not store.has("victims", "u")  # not done: a rerun computes it again
    assert not [p for p in tmp_path.rglob(".*.tmp*")]  # the half-written temp file is gone


def test_the_source_revision_counts_a_new_module_as_a_change(tmp_path):
    """A module added to the package and not committed changes what runs: the rows say +dirty (git status skipped
    untracked files, so they did not)."""
    import subprocess

    from harness.provenance import source_revision

    source_revision = source_revision.__wrapped__  # uncached: the same folder is asked twice
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "a.py").write_text("x = 1\n")
    git = lambda *a: subprocess.run(["git", "-C", str(tmp_path), *a], check=True, capture_output=True)  # noqa: E731
    git("init", "-q")
    git("add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    clean = source_revision(pkg)
    assert clean is not None and not clean.endswith("+dirty")
    (pkg / "b.py").write_text("y = 2\n")
    assert source_revision(pkg) == clean + "+dirty"
