"""What the Ray runner's test modules share: one loopback cluster per module, a planned sweep, a driver."""

from __future__ import annotations

import os

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # loopback only; Ray reads it at import
from pathlib import Path

import pytest

from harness.runner import work
from harness.runner.cluster import loopback_only
from harness.runner.driver import Options, SweepDriver
from harness.sweep import load_sweep, plan_sweep
from tests.test_sweep import write_sweep

ray = pytest.importorskip("ray")


def short_temp_dir():
    """A Ray temp folder whose path leaves room for Ray's socket names (107 bytes at most): pytest's own temp folders
    sit under $TMPDIR, which can be long on a user's machine. Removed when the context ends."""
    import contextlib
    import shutil
    import tempfile

    @contextlib.contextmanager
    def made():
        folder = tempfile.mkdtemp(prefix="rh-", dir="/tmp")
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    return made()


@pytest.fixture(scope="module", autouse=True)
def cluster():
    """A module's own cluster (import it into the module: it is autouse there)."""
    loopback_only()
    with short_temp_dir() as temp:
        ray.init(num_cpus=2, include_dashboard=False, _temp_dir=temp, _node_ip_address="127.0.0.1", log_to_driver=False)
        yield
        ray.shutdown()


def make_plan(tmp_path, name="s", **over):
    path = write_sweep(tmp_path, name=name, **over)
    return plan_sweep(load_sweep(path), path), path


def drive(plan, out, stages=work.REAL, force=False):
    return SweepDriver(plan, Options(out=Path(out), force=force, max_in_flight=4, progress=False), stages)


def shard_keys(store):
    t = store.read("shards", columns=["unit_id", "victim", "shard"]).to_pylist()
    return [(r["unit_id"], r["victim"], r["shard"]) for r in t]
