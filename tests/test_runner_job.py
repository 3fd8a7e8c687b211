"""`ray job submit --working-dir . -- python -m harness sweep ...` against a loopback head this test starts and stops.

Slow (a head, a job upload, a small sweep): marked `slow`, and still part of `make test` / CI.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import harness.runner.tables  # noqa: F401 - registers the shards table
from harness.runner.local_head import head_pids, stop_head
from harness.store import ResultStore
from tests.conftest import ROOT

RAY = str(Path(sys.executable).parent / "ray")
EXCLUDES = [".venv", "results", ".cache", ".git", "**/__pycache__", ".pytest_cache", "*.egg-info"]


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@pytest.mark.slow
def test_ray_job_submit_runs_the_small_sweep(tmp_path, hf_home):
    temp_dir = str(Path("/tmp") / f"rh-job-{os.getpid()}-{int(time.time())}")  # short: unix socket paths
    token = tmp_path / "ray-token"  # this head's own token, shared with the client: auth stays on
    token.write_text(secrets.token_hex(32))
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_AUTH_TOKEN")}
    env.update({"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0", "HF_HUB_OFFLINE": "1",
                "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(hf_home), "RAY_AUTH_MODE": "token",
                "RAY_AUTH_TOKEN_PATH": str(token)})
    try:
        for _attempt in range(3):  # a port found free can be taken before Ray binds it: new ports, and again
            gcs, dash, client, agent, agent_grpc, metrics = _free_ports(6)
            start = [RAY, "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(gcs),
                     "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dash),
                     "--ray-client-server-port", str(client), "--dashboard-agent-listen-port", str(agent),
                     "--dashboard-agent-grpc-port", str(agent_grpc), "--metrics-export-port", str(metrics),
                     "--temp-dir", temp_dir, "--num-cpus", "2"]
            r = subprocess.run(start, env=env, capture_output=True, text=True, timeout=120)
            said = (r.stdout + r.stderr).lower()
            if r.returncode == 0 or not any(w in said for w in ("in use", "bind", "port")):
                break
            stop_head(temp_dir)
        assert r.returncode == 0, r.stderr[-2000:]
        out = tmp_path / "out"
        submit = [RAY, "job", "submit", "--address", f"http://127.0.0.1:{dash}", "--working-dir", str(ROOT),
                  "--runtime-env-json", json.dumps({"excludes": EXCLUDES}), "--",
                  sys.executable, "-m", "harness", "sweep", "tasks/sweeps/small-cpu.yaml", "--out", str(out), "--quiet"]
        r = subprocess.run(submit, env=env, capture_output=True, text=True, timeout=400, cwd=ROOT)
        log = r.stdout[-3000:] + r.stderr[-2000:]
        assert r.returncode == 0 and "succeeded" in log, log
        assert "units 4 - 4 done now" in log, log
        store = ResultStore(out, create=False)
        victims = store.read("victims").to_pylist()
        assert len(victims) == 8 and {v["model"] for v in victims} == {"identity", "all-minilm-l6-v2"}
        # the pixel victims carry the SSIM score through the Ray path too; the text ones do not
        assert all((v["good_ssim"] is not None) == (v["model"] == "identity") for v in victims)
        assert all(0 <= v["ssim_tpr_at_fpr"] <= 1 for v in victims if v["model"] == "identity")
        assert all(v["good_ssim_beyond_public"] <= v["good_ssim"] for v in victims if v["model"] == "identity")
        # two shards of two restarts (kkt-reference keeps every restart's candidates): the first shard is the first half
        assert all(0 <= v["good_at_0_8_first_half"] <= v["good_at_0_8"] for v in victims)
        assert len(store.read("shards").to_pylist()) == 16
        # the same head joined by its loopback address from a shell that does not pin Ray to loopback: the driver
        # binds 127.0.0.1 too (it registered the machine's own address, which the head never answers, and hung)
        from tests.test_sweep import write_sweep

        plain = {k: v for k, v in env.items() if k != "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"}
        tiny = write_sweep(tmp_path, grid={"seed": [0]})
        sweep = [sys.executable, "-m", "harness", "sweep", tiny, "--out", str(tmp_path / "direct"), "--quiet"]
        r = subprocess.run([*sweep, "--address", f"127.0.0.1:{gcs}"], env=plain, capture_output=True, text=True,
                           timeout=180, cwd=ROOT)
        assert r.returncode == 0 and "units 1 - 1 done now" in r.stdout + r.stderr, r.stdout[-1000:] + r.stderr[-2000:]
        sweep[sweep.index("--out") + 1] = str(tmp_path / "via-dashboard")
        r = subprocess.run([*sweep, "--address", f"http://127.0.0.1:{dash}"], env=plain, capture_output=True, text=True,
                           timeout=60, cwd=ROOT)  # the dashboard's address is `ray job submit`'s, not the cluster's
        assert r.returncode == 2 and r.stderr.strip().splitlines() == [
            f"recon-harness: error: --address = 'http://127.0.0.1:{dash}': is a dashboard (jobs API) address; --address "
            "takes the cluster's HOST:6379 (or ray://HOST:10001 for Ray Client); `ray job submit` is what takes the "
            "dashboard's"], r.stderr
    finally:
        stop_head(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)
    assert not head_pids(temp_dir)
