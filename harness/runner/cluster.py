"""Connect to Ray (a local loopback cluster, or an address) and check requests fit before running."""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import time
from pathlib import Path
from urllib.parse import urlparse

from harness.errors import HarnessError


def _host(address: str) -> str:
    """The host of HOST:PORT or ray://HOST:PORT; refuses a dashboard (http) address and one without a port."""
    url = urlparse(address if "://" in address else f"ray://{address}")
    if url.scheme in ("http", "https"):
        raise HarnessError("--address", address, "is a dashboard (jobs API) address; --address takes the cluster's "
                           "HOST:6379 (or ray://HOST:10001 for Ray Client); `ray job submit` is what takes the dashboard's")
    try:
        port = url.port  # urllib raises on a port that is not a number from 0 to 65535
    except ValueError:
        port = None
    if not url.hostname or not port:
        raise HarnessError("--address", address, "expected HOST:PORT (e.g. 127.0.0.1:6379, a port from 1 to 65535), "
                           "'auto', or 'local'")
    return url.hostname


def _is_loopback(host: str) -> bool:
    try:
        return all(ipaddress.ip_address(info[4][0]).is_loopback for info in socket.getaddrinfo(host, None))
    except (OSError, ValueError):
        return False


def _probe(address: str, timeout: float = 5.0) -> None:
    """A TCP connect to host:port, so an address that does not answer fails in seconds, not minutes."""
    host = _host(address)
    port = urlparse(address if "://" in address else f"ray://{address}").port
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        raise HarnessError(
            "--address", address,
            f"no Ray cluster answers there ({exc.strerror or exc}); start one with `ray start --head` "
            "or leave --address out to start a local one",
        ) from None


def check_out_outlives_job(out: str | Path, field: str = "--out") -> None:
    """Under `ray job submit --working-dir`, the job runs in Ray's unpacked copy of that folder, which Ray deletes
    later (and a new upload gets a new copy): a relative output there would be lost, and never resumed."""
    if not Path(out).is_absolute() and "working_dir_files" in Path.cwd().parts:
        raise HarnessError(
            field, str(out), f"is relative to Ray's temporary copy of the job's working directory ({Path.cwd()}), which "
            "Ray removes: give an absolute path on the head node, e.g. --out $HOME/recon-harness/results/nightly",
        )


def _no_auth_on_note(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith("Token authentication is enabled for this Ray cluster")


def loopback_only() -> None:
    """A one-node cluster keeps every port on 127.0.0.1 (else Ray binds to the machine's address).

    Ray reads RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER at import, so the constant is set too; the variable
    reaches the processes ray.init starts.
    """
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # Ray turns token authentication on for a new local cluster and says so on every start; the note goes (a
    # warning that authentication is off does not)
    logging.getLogger("ray._private.authentication.authentication_token_setup").addFilter(_no_auth_on_note)
    from ray._private import ray_constants

    ray_constants.ENABLE_RAY_CLUSTER = False


def start_local(**options) -> None:
    """`ray.init` of a one-node cluster; a temporary folder whose path leaves no room for Ray's socket names (Unix
    sockets take 107 bytes at most) is one line naming the fix."""
    import ray

    try:
        ray.init(**options)
    except OSError as exc:
        if "AF_UNIX path length" not in str(exc):
            raise
        where = os.environ.get("RAY_TMPDIR") or os.environ.get("TMPDIR") or "/tmp"
        field = "RAY_TMPDIR" if os.environ.get("RAY_TMPDIR") else "TMPDIR"
        raise HarnessError(field, where, "is too long a path for Ray's socket files (107 bytes at most, with Ray's "
                           "session folders); set RAY_TMPDIR to a short folder, e.g. export RAY_TMPDIR=/tmp") from None


def connect(address: str | None = None, num_cpus: int | None = None, temp_dir: str | None = None) -> str:
    """Join `address` (or $RAY_ADDRESS under `ray job submit`), else start a one-node cluster on loopback."""
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if ray.is_initialized():
        return "already connected"
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address in (None, "local"):
        loopback_only()
        start_local(num_cpus=num_cpus, include_dashboard=False, _node_ip_address="127.0.0.1", _temp_dir=temp_dir,
                    log_to_driver=False, configure_logging=False)
        return "local (127.0.0.1)"
    if address != "auto":
        _probe(address)
        if _is_loopback(_host(address)):  # a head on this machine's loopback: the driver must bind there too (else
            loopback_only()  # it registers the machine's own address, which the head cannot reach, and waits forever)
    try:
        ray.init(address=address, log_to_driver=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise HarnessError("--address", address, f"could not join the Ray cluster there ({str(exc).splitlines()[0]})") from None
    return address


def capacity() -> dict[str, float]:
    """The largest amount of each resource any one alive node has (a task runs on one node)."""
    import ray

    best: dict[str, float] = {}
    for node in ray.nodes():
        if not node.get("Alive"):
            continue
        for k, v in node.get("Resources", {}).items():
            best[k] = max(best.get(k, 0.0), float(v))
    return best


def check_requests(requests: dict[str, dict], wait_s: float = 0.0) -> dict[str, float]:
    """Every request must fit one node; wait up to `wait_s` for nodes to join (autoscaling), then fail."""
    deadline = time.monotonic() + wait_s
    keys = {"num_cpus": "CPU", "num_gpus": "GPU", "memory": "memory"}
    if wait_s > 0:  # ask an autoscaler (if any) for one node that fits each request
        from ray.autoscaler.sdk import request_resources

        bundles = [{keys[k]: v for k, v in req.items() if k in keys and v} for req in requests.values()]
        request_resources(bundles=[b for b in bundles if b])
    while True:
        cap = capacity()
        missing = [
            (what, opt, val, cap.get(keys[opt], 0.0))
            for what, req in requests.items()
            for opt, val in req.items()
            if opt in keys and val and val > cap.get(keys[opt], 0.0) + 1e-9
        ]
        if not missing or time.monotonic() >= deadline:
            break
        time.sleep(min(5.0, max(0.1, deadline - time.monotonic())))
    if missing:
        what, opt, val, have = missing[0]
        raise HarnessError(
            f"resources.{what}.{opt}", val,
            f"no node of this cluster has that much (largest: {have:g} {keys[opt]}); lower the request, add such "
            "nodes, or pass --wait-for-resources SECONDS on an autoscaling cluster",
        )
    return cap


def unused_gpus_notice(requests: dict[str, dict], cap: dict[str, float]) -> str | None:
    """One line when the cluster has GPUs and the attack's shards ask for none: Ray then hides the GPUs from their
    workers, and the whole sweep runs on CPUs (the default requests are CPU-only)."""
    gpus = cap.get("GPU", 0.0)
    if gpus <= 0 or requests.get("shard", {}).get("num_gpus", 0):
        return None
    idle = [k for k in ("embed", "train", "finish") if not requests.get(k, {}).get("num_gpus", 0)]
    return (f"notice: the cluster has {gpus:g} GPU(s) but resources.shard.num_gpus is 0 (and {', '.join(idle) or 'no other stage'} "
            "ask none): Ray hides GPUs from tasks that ask none, so the attack runs on CPUs; to use them give e.g. "
            "resources: {shard: {num_gpus: 0.25}, train: {num_gpus: 0.25}, embed: {num_gpus: 0.5}} (docs/sweeps.md)")
