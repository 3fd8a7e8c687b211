"""How many of `kkt`'s restarts fit in memory at once: an estimate per restart against a budget.

The batched closed form keeps, per restart, the candidates and their optimiser state (m x coords),
and while one loss-and-gradient pass runs, the hidden activations and backprop signals (m x width
per layer), two m x m Gram matrices or the layer's G_k per layer, and for the box prior the
candidates in the full input space (m x d). Restarts are independent, so a batch that does not fit is split into chunks of
restarts that do; results are the same up to float rounding. Measured (peak RSS per extra restart,
float32, 3072-1000-1, box prior): 162 MiB at m = 1000 in row-space coordinates (197 MiB estimated
here), 165 MiB in the full input space (186), 97 MiB at m = 500 (106): the estimate errs on the safe side.
"""

from __future__ import annotations

import math
import os
import sys

import torch

from harness.attacks.objective import gram_is_cheaper

CPU_PASS_BYTES = 128 * 2**20  # on a CPU, a pass over more restarts than this holds runs slower per restart
CPU_SHARE = 0.5  # of the memory the OS reports available: leave room for everything else on the machine
CUDA_SHARE = 0.8  # of the device's free memory


def resolve_device(name: str) -> torch.device:
    """'auto' is the first CUDA device where one is present, else the CPU."""
    from harness.errors import HarnessError

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise HarnessError("attack.params.device", name, "no CUDA device is visible here; use device: auto or cpu")
    device = torch.device(name)
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise HarnessError("attack.params.device", name, f"{torch.cuda.device_count()} CUDA device(s) are visible here; "
                           "use device: auto, cuda or cuda:0")
    return device


def available_bytes() -> int:
    """The OS's MemAvailable (the memory a CPU attack may take)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def budget_bytes(device: torch.device, budget_gb: float | None) -> int:
    """The memory one batch may use: the `memory_budget_gb` parameter, else a share of what is free; on a GPU that a
    Ray task holds a fraction of (a sweep's `num_gpus: 0.25` packs four shards on one), no more than that fraction
    of the device's memory: the shards start together, each seeing the whole device free."""
    if budget_gb is not None:
        return int(budget_gb * 2**30)
    if device.type != "cuda":
        return int(CPU_SHARE * available_bytes())
    free, total = torch.cuda.mem_get_info(device)
    return int(CUDA_SHARE * min(free, gpu_fraction() * total))


def gpu_fraction() -> float:
    """The fraction of its GPU this process holds: a Ray task's fractional `num_gpus`, else 1."""
    ray = sys.modules.get("ray")  # only where Ray is running already: a plain `run` never imports it
    if ray is None or not ray.is_initialized():
        return 1.0
    try:
        got = float(ray.get_runtime_context().get_assigned_resources().get("GPU", 0.0))
    except Exception:  # noqa: BLE001 - the driver, or a Ray without the call: no fraction known
        return 1.0
    return got if 0 < got < 1 else 1.0


def state_bytes(m: int, coords: int, out_dim: int, itemsize: int) -> int:
    """What every restart keeps for the whole bracket: candidates, lambdas, gradients, Adam's two moments."""
    return itemsize * 4 * m * (coords + out_dim)


def pass_bytes(m: int, layers: list[tuple[int, int]], input_dim: int, itemsize: int, full_input: bool) -> int:
    """What one restart holds during a loss-and-gradient pass (the forward's saved tensors and the reverse
    pass's temporaries: an upper bound, residual_grad.py holds fewer than autograd did) for `layers` =
    (width, fan_in) of each layer, the first one's fan_in in the candidates' coordinates: activations and
    signals per hidden layer, per layer the two Gram matrices or G_k itself (whichever objective.py
    computes), and the full-input-space copy."""
    floats = 12 * m * sum(w for w, _ in layers[:-1]) + 4 * m * layers[0][1]
    floats += sum(11 * m * m if gram_is_cheaper(m, w, f) else 4 * w * f for w, f in layers)
    if full_input:  # the box prior works on candidates mapped back to the full input space
        floats += 9 * m * input_dim
    return itemsize * floats


def restart_chunk(restarts: int, per_pass: int, per_state: int, budget: int) -> int:
    """Restarts per chunk: as many as fit the budget after every restart's state (at least 1)."""
    room = budget - restarts * per_state
    return max(1, min(restarts, math.floor(room / max(per_pass, 1)))) if room > 0 else 1


def cpu_chunk(restarts: int, per_pass: int) -> int:
    """Restarts per pass on a CPU: batches whose tensors outgrow the caches and the C heap (each large
    tensor a fresh mapping, page-faulted every iteration) run slower per restart. Measured, 384-1000-1,
    m = 1000, 16 restarts, 1 thread: 162 ms per restart-iteration in one batch, 91 in chunks of 4, 81 one
    at a time; at m = 40 one batch of 16 is the fastest (2 ms against 3)."""
    return max(1, min(restarts, CPU_PASS_BYTES // max(per_pass, 1)))


def chunks(n: int, size: int) -> list[slice]:
    return [slice(s, min(n, s + size)) for s in range(0, n, size)]
