"""Sweep benchmarks on a local 2-CPU Ray cluster (loopback only); prints measured ratios.

    python bench/sweep.py            # all: scaling, overhead, resume, worker kill, driver memory
    python bench/sweep.py scaling overhead

scaling   >= 16 independent CPU shards (real kkt-reference attacks of fixed work): 2 workers vs 1
overhead  Ray's cost per 5-s shard: (submit -> rows written) - time inside the shard, / 5 s
resume    kill the driver (SIGKILL) halfway, rerun: finished shards recomputed (must be 0)
kill      SIGKILL a worker mid-shard: every unit complete, no duplicate (unit, victim, shard) or run ids
memory    driver peak RSS for 100 vs 10,000 planned units (fake stages: this benchmark only)
"""

from __future__ import annotations

import atexit
import os
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

os.environ.update({"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0",
                   "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"})
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from harness.runner.local_head import head_pids, procs, stop_head  # noqa: E402

CIFAR = ROOT / "tests" / "fixtures" / "cifar10-test-300.parquet"
TMP = Path(tempfile.gettempdir())  # the run's own scratch folder, made once the arguments are read
BENCHES = ("scaling", "overhead", "resume", "kill", "memory")


def sweep_file(name: str, seeds: int, restarts: int, iterations: int, per_shard: int = 1) -> Path:
    task = {
        "name": "bench-cifar", "model": "identity", "null_victim": False,
        "data": {"source": str(CIFAR), "format": "parquet", "input_column": "img", "label_column": "label"},
        "classes": ["airplane", "automobile"], "per_class": 4, "nonmembers": 10,
        "head": {"widths": [64], "optimizer": "adam", "lr": 0.01, "max_steps": 100},
        "attack": {"name": "kkt-reference", "params": {"m": 8, "restarts": restarts, "iterations": iterations,
                   "lr": 1e-4, "init_scale": 0.01, "lambda_min": 0.1, "alpha": 20}},
    }
    spec = {"models": ["identity"], "tasks": [task], "grid": {"seed": list(range(seeds))}, "restarts_per_shard": per_shard,
            "resources": {"embed": {"num_cpus": 0}, "train": {"num_cpus": 1}, "shard": {"num_cpus": 1}, "finish": {"num_cpus": 1}}}
    p = TMP / f"{name}.yaml"
    p.write_text(yaml.safe_dump(spec))
    return p


def drive(path: Path, out: Path, max_in_flight: int, on_event=None):
    from harness.runner.driver import Options, SweepDriver
    from harness.sweep import load_sweep, plan_sweep

    plan = plan_sweep(load_sweep(path), path)
    t0 = time.perf_counter()
    c = SweepDriver(plan, Options(out=out, max_in_flight=max_in_flight, progress=False, on_event=on_event)).run()
    return c, time.perf_counter() - t0


def ray_dir() -> str:
    """Ray's session folder: a short path under /tmp (its socket paths must fit 107 bytes, which a long TMPDIR
    overflows), removed at exit."""
    path = f"/tmp/rh-bs-{os.getpid()}"
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def local_cluster(cpus: int):
    import ray

    from harness.runner.cluster import loopback_only

    loopback_only()
    ray.init(num_cpus=cpus, include_dashboard=False, _temp_dir=ray_dir(), log_to_driver=False)
    return ray


def its_per_s(cpus: int) -> float:
    """Warm the workers and measure the attack's speed with `cpus` shards at once."""
    c, _ = drive(sweep_file(f"warm{cpus}", 1, cpus, 150), TMP / f"warm{cpus}", 2 * cpus)
    import harness.runner.tables  # noqa: F401
    from harness.store import ResultStore

    t = ResultStore(TMP / f"warm{cpus}", create=False).read("shards").to_pylist()
    return 150 / (sum(r["compute_s"] for r in t) / len(t))


def bench_scaling(shards: int = 24, shard_s: float = 2.0) -> None:
    times, its = {}, None
    for cpus in (1, 2):
        ray = local_cluster(cpus)
        rate = its_per_s(cpus)
        its = its or int(rate * shard_s)  # the same fixed work per shard for both runs
        rec = []
        on_event = lambda kind, info: rec.append(info["compute_s"]) if kind == "shard" else None  # noqa: E731
        c, wall = drive(sweep_file(f"scale{cpus}", 3, shards // 3, its), TMP / f"scale{cpus}", 2 * cpus, on_event)
        assert c.shards_run == shards and c.units_failed == 0, c
        times[cpus] = wall
        ray.shutdown()
        print(f"scaling: {shards} shards x {its} iterations, {cpus} worker(s): {wall:.1f} s; mean shard "
              f"{sum(rec) / len(rec):.2f} s; shards running at once (sum of shard time / wall) {sum(rec) / wall:.2f}; "
              f"load {os.getloadavg()[0]:.1f}")
    print(f"SCALING  2 workers vs 1: {times[1] / times[2]:.2f}x faster  (target >= 1.8x)")


def bench_overhead(n: int = 2, shard_s: float = 5.0) -> None:
    """n shards on n CPUs at once, so submit -> written holds no queueing behind other shards."""
    ray = local_cluster(n)
    its = int(its_per_s(n) * shard_s)
    rec = []
    on_event = lambda kind, info: rec.append(info) if kind == "shard" else None  # noqa: E731
    c, wall = drive(sweep_file("overhead", 1, n, its), TMP / "overhead", 1, on_event)
    ray.shutdown()
    over = [i["written"] - i["submitted"] - i["compute_s"] for i in rec]
    mean_shard = sum(i["compute_s"] for i in rec) / len(rec)
    ratio = (sum(over) / len(over)) / mean_shard
    print(f"overhead: {len(rec)} shards of {mean_shard:.2f} s; submit->written minus compute: "
          f"mean {1000 * sum(over) / len(over):.0f} ms, max {1000 * max(over):.0f} ms")
    print(f"OVERHEAD Ray per shard / shard time: {100 * ratio:.2f}%  (target <= 5%)")


# ---- a head of our own (ray start), for driver and worker kills -----------------------------------
def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    [s.close() for s in socks]
    return ports


def start_head() -> tuple[str, dict, str]:
    temp = f"/tmp/rh-bh-{os.getpid()}"  # short: Ray's socket paths must fit 107 bytes
    gcs, dash, client, agent, agrpc, metrics = free_ports(6)
    token = TMP / "token"
    token.write_text(secrets.token_hex(32))
    env = {**{k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}
    ray = str(Path(sys.executable).parent / "ray")
    subprocess.run([ray, "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(gcs), "--dashboard-host",
                    "127.0.0.1", "--dashboard-port", str(dash), "--ray-client-server-port", str(client),
                    "--dashboard-agent-listen-port", str(agent), "--dashboard-agent-grpc-port", str(agrpc),
                    "--metrics-export-port", str(metrics), "--temp-dir", temp, "--num-cpus", "2"],
                   env=env, check=True, capture_output=True)
    return f"127.0.0.1:{gcs}", env, temp


def run_driver(path, out, address, env) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "harness", "sweep", str(path), "--out", str(out), "--address", address,
                             "--quiet", "--max-in-flight", "4"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def unique_ids(out: Path) -> tuple[int, int, int, int]:
    import harness.runner.tables  # noqa: F401
    from harness.store import ResultStore

    s = ResultStore(out, create=False)
    sh = [(r["unit_id"], r["victim"], r["shard"]) for r in s.read("shards", columns=["unit_id", "victim", "shard"]).to_pylist()]
    runs = [(r["unit_id"], r["victim"], r["run_id"]) for r in s.read("attack_runs", columns=["unit_id", "victim", "run_id"]).to_pylist()]
    return len(sh), len(set(sh)), len(runs), len(set(runs))


def bench_faults(which: list[str]) -> None:
    address, env, temp = start_head()
    try:
        if "resume" in which:
            path = sweep_file("resume", 4, 4, 400)  # 16 shards
            out = TMP / "resume"
            p = run_driver(path, out, address, env)
            while len(list((out / "shards").glob("*.parquet"))) < 8 and p.poll() is None:
                time.sleep(0.05)
            p.send_signal(signal.SIGKILL)
            p.wait()
            before = {f: f.stat().st_mtime_ns for f in (out / "shards").glob("*.parquet")}
            time.sleep(1)
            p = run_driver(path, out, address, env)
            log = p.communicate()[0]
            recomputed = sum(1 for f, m in before.items() if f.stat().st_mtime_ns != m)
            summary = next((ln for ln in log.splitlines() if ln.startswith("sweep ")), log[-300:])
            n, nu, r, ru = unique_ids(out)
            print(f"resume: driver killed with {len(before)}/16 shards written; rerun exit {p.returncode}: {summary}")
            print(f"RESUME   finished shards recomputed after the driver was killed: {recomputed}  (target 0); "
                  f"shard rows {n} ({nu} unique), run rows {r} ({ru} unique)")
        if "kill" in which:
            path = sweep_file("kill", 2, 4, 600)  # 8 shards
            out = TMP / "kill"
            p = run_driver(path, out, address, env)
            killed = None
            while killed is None and p.poll() is None:
                for pid in head_pids(temp):
                    cmd = procs().get(pid, (0, ""))[1]
                    if cmd.startswith("ray::shard_task"):
                        time.sleep(0.3)  # mid-shard
                        os.kill(pid, signal.SIGKILL)
                        killed = pid
                        break
                time.sleep(0.05)
            log = p.communicate()[0]
            summary = next((ln for ln in log.splitlines() if ln.startswith("sweep ")), log[-300:])
            n, nu, r, ru = unique_ids(out)
            print(f"kill: SIGKILLed worker pid {killed} mid-shard; sweep exit {p.returncode}: {summary}")
            print(f"KILL     units complete after a worker kill: exit {p.returncode}; shard rows {n} ({nu} unique, "
                  f"8 planned), run rows {r} ({ru} unique)")
    finally:
        stop_head(temp)
        shutil.rmtree(temp, ignore_errors=True)  # its session logs: outside the scratch folder (a short path for Ray's sockets)


# ---- driver memory with fake stages -------------------------------------------------------------
def fake_prepare(state, unit, base_dir, cache_dir):
    return SimpleNamespace(source="fake", emb=SimpleNamespace(dim=2))


def fake_train(unit, prep, kinds):
    from harness.pipeline.unit import Trained

    return Trained({}, {})


def fake_shard(unit, prep, trained, kind, job):
    import torch

    from harness.attacks.base import AttackResult

    return AttackResult(torch.empty(0, 2), torch.empty(0, dtype=torch.long), torch.empty(0),
                        torch.empty(0, dtype=torch.long), [], {}, 0.0)


def fake_finish(unit, prep, trained, head_paths, results):
    return {}


def memory_child(n: int) -> None:
    from harness.runner.driver import Options, SweepDriver
    from harness.runner.work import Stages
    from harness.sweep import load_sweep, plan_sweep

    local_cluster(2)
    path = sweep_file(f"mem{n}", n, 1, 1)
    plan = plan_sweep(load_sweep(path), path)
    t0 = time.perf_counter()
    stages = Stages(fake_prepare, fake_train, fake_shard, fake_finish)
    c = SweepDriver(plan, Options(out=TMP / f"mem{n}", max_in_flight=16, progress=False), stages).run()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"MEMCHILD {n} {peak:.1f} {c.shards_run} {time.perf_counter() - t0:.1f}")


def bench_memory() -> None:
    peaks = {}
    for n in (100, 10_000):
        r = subprocess.run([sys.executable, __file__, "--memory-child", str(n)], capture_output=True, text=True, cwd=ROOT)
        line = next(ln for ln in r.stdout.splitlines() if ln.startswith("MEMCHILD")) if "MEMCHILD" in r.stdout else r.stderr[-2000:]
        _, _, peak, shards, wall = line.split()
        peaks[n] = float(peak)
        print(f"memory: {n} planned units ({shards} shards, fake stages) in {wall} s: driver peak RSS {peak} MiB")
    print(f"MEMORY   driver peak RSS 10,000 vs 100 units: +{peaks[10_000] - peaks[100]:.0f} MiB  (target <= 200 MiB)")


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("which", nargs="*", metavar="BENCH", help=f"any of {', '.join(BENCHES)} (default: all)")
    ap.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)  # the memory bench's own subprocess
    args = ap.parse_args()
    if set(args.which) - set(BENCHES):
        ap.error(f"unknown bench {', '.join(sorted(set(args.which) - set(BENCHES)))}; choose from {', '.join(BENCHES)}")
    TMP = Path(tempfile.mkdtemp(prefix="rh-bench-sweep-"))
    atexit.register(shutil.rmtree, TMP, ignore_errors=True)  # the stores it wrote (one was 198 MB): nothing left behind
    if args.memory_child is not None:
        memory_child(args.memory_child)
        sys.exit(0)
    which = args.which or list(BENCHES)
    print(f"bench/sweep.py on {os.cpu_count()} CPUs (load {os.getloadavg()[0]:.1f}); scratch {TMP}")
    if "scaling" in which:
        bench_scaling()
    if "overhead" in which:
        bench_overhead()
    if "resume" in which or "kill" in which:
        bench_faults(which)
    if "memory" in which:
        bench_memory()
