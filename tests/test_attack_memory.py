"""kkt's memory and cost as m grows: restarts in memory-sized chunks (the same search as one batch, said
once, on the device asked for), and ||G||^2 formed explicitly where the Gram matrices would cost more."""

import logging

import pytest
import torch

from harness.attacks import make_attack, memory
from harness.attacks.base import Victim
from harness.attacks.margins import balanced_labels
from harness.attacks.objective import HeadTensors, residual_sq
from harness.errors import HarnessError
from harness.heads.mlp import MLPHead
from harness.victims.frame import Frame


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_victim(prior="box", out=1, loss="logistic"):
    torch.manual_seed(0)
    head = MLPHead([12, 24, out]).scale_init_(0.5)
    return Victim(head=head, loss=loss, num_classes=max(out, 2), frame=Frame(torch.zeros(12)), prior=prior,
                  typical_norm=2.0)


@pytest.mark.parametrize("prior,subspace,optimizer", [("box", "auto", "adam"), ("norm", "off", "mixed")])
def test_chunked_restarts_give_the_unchunked_result(prior, subspace, optimizer, caplog):
    """A budget too small for the batch runs the restarts 3 at a time (the state of all 8 fits); same
    settings, losses, prunes and candidates as one batch, up to float64 rounding."""
    params = {"m": 6, "restarts": 8, "iterations": 60, "rungs": 2, "dtype": "float64", "subspace": subspace,
              "optimizer": optimizer, "lr_range": (1e-3, 3e-2), "device": "cpu"}
    v = tiny_victim(prior)
    whole = make_attack("kkt", params).reconstruct(v, progress=False)
    per_pass = memory.pass_bytes(6, [(24, 12), (1, 24)], 12, 8, prior == "box" and subspace == "auto")  # W1 has rank 12
    state = memory.state_bytes(6, 12, 1, 8)
    budget = (8 * state + 3 * per_pass + 10) / 2**30
    with caplog.at_level(logging.INFO, logger="harness.attacks.kkt"):
        split = make_attack("kkt", {**params, "memory_budget_gb": budget}).reconstruct(v, progress=False)
    notes = [r.message for r in caplog.records if "chunks of" in r.message]
    assert len(notes) == 1 and "chunks of 3" in notes[0], notes
    assert {r.settings["restart_chunk"] for r in split.runs} == {3}
    assert {r.settings["restart_chunk"] for r in whole.runs} == {8}
    assert [r.status for r in split.runs] == [r.status for r in whole.runs]
    for a, b in zip(whole.runs, split.runs):
        assert a.settings["lr"] == b.settings["lr"]
        # a batch of 3 and a batch of 8 may sum in another order (BLAS kernels differ by shape): rounding, not 1e-7
        assert a.final_loss == pytest.approx(b.final_loss, rel=1e-7, abs=1e-12)
        assert a.loss_curve == pytest.approx(b.loss_curve, rel=1e-7, abs=1e-12)
    assert torch.equal(whole.run_ids, split.run_ids)
    torch.testing.assert_close(split.candidates, whole.candidates, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(split.lambdas, whole.lambdas, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dims,kind,bias", [([8, 16, 1], "binary", "first"), ([8, 16, 12, 3], "multiclass", "all")])
def test_explicit_gradient_norm_equals_the_gram_form(dims, kind, bias):
    """||G_k||^2 by forming G_k (large m) and by the m x m Gram matrices (small m): same value and gradient."""
    torch.manual_seed(1)
    head = MLPHead(dims, bias=bias)
    ht = HeadTensors.of(head, torch.float64)
    x = torch.randn(3, 5, dims[0], dtype=torch.float64, requires_grad=True)
    lam = torch.rand(3, 5, dtype=torch.float64, requires_grad=True)
    labels = balanced_labels(5, dims[-1] if kind == "multiclass" else 2)
    form = "binary" if kind == "binary" else "multiclass"
    got = [residual_sq(ht, x, lam, labels, form, 20.0, gram=g) for g in (True, False)]
    torch.testing.assert_close(got[0], got[1])
    grads = [torch.autograd.grad(r.sum(), [x, lam]) for r in got]
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b)


def test_a_budget_below_one_restart_still_runs_one_at_a_time():
    res = make_attack("kkt", {"m": 4, "restarts": 3, "iterations": 5, "rungs": 0, "memory_budget_gb": 1e-9,
                              "device": "cpu"}).reconstruct(tiny_victim(), progress=False)
    assert {r.settings["restart_chunk"] for r in res.runs} == {1} and len(res.candidates) == 12


def test_restart_chunk_arithmetic():
    assert memory.restart_chunk(16, per_pass=100, per_state=10, budget=16 * 10 + 450) == 4
    assert memory.restart_chunk(16, per_pass=100, per_state=10, budget=10**9) == 16
    assert memory.restart_chunk(16, per_pass=100, per_state=10, budget=5) == 1
    assert memory.chunks(7, 3) == [slice(0, 3), slice(3, 6), slice(6, 7)]
    # on a CPU, batches whose pass outgrows CPU_PASS_BYTES run slower per restart: m = 1000 pixels one at a time
    assert memory.cpu_chunk(16, memory.pass_bytes(1000, [(1000, 1000), (1, 1000)], 3072, 4, True)) == 1
    assert memory.cpu_chunk(16, memory.pass_bytes(40, [(1000, 384), (1, 1000)], 384, 4, False)) == 16


def test_estimate_grows_linearly_in_m_at_fixed_width():
    """Past m ~ 500 on a 1000-wide layer the objective forms G_k (fixed size) instead of m x m Grams."""
    layers = [(1000, 1000), (1, 1000)]
    a, b = (memory.pass_bytes(m, layers, 3072, 4, True) for m in (500, 1000))
    assert 1.7 <= b / a <= 2.0
    small = [(1000, 384), (1, 1000)]
    assert memory.pass_bytes(40, small, 384, 4, False) < memory.pass_bytes(80, small, 384, 4, False)
    assert memory.budget_bytes(torch.device("cpu"), 2.0) == 2 * 2**30
    assert memory.budget_bytes(torch.device("cpu"), None) > 0


def test_cuda_asked_for_where_there_is_none_is_a_one_line_error():
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises(HarnessError, match="device = 'cuda'.*no CUDA device"):
        make_attack("kkt", {"device": "cuda", "iterations": 1}).reconstruct(tiny_victim(), progress=False)
    with pytest.raises(HarnessError, match="device"):
        make_attack("kkt", {"device": "gpu"})
    assert memory.resolve_device("auto").type == "cpu"


def test_a_gpu_shared_by_ray_tasks_is_budgeted_by_each_tasks_fraction(monkeypatch):
    """Four shards at num_gpus 0.25 start together, each seeing the whole device free: each budgets 80% of its
    quarter of the device, not 80% of what is free (which would put four times the memory on it)."""
    gib = 2**30
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (70 * gib, 80 * gib))
    cuda = torch.device("cuda")
    assert memory.gpu_fraction() == 1.0  # no Ray here
    assert memory.budget_bytes(cuda, None) == int(0.8 * 70 * gib)
    monkeypatch.setattr(memory, "gpu_fraction", lambda: 0.25)
    assert memory.budget_bytes(cuda, None) == int(0.8 * 20 * gib)
    assert memory.budget_bytes(cuda, 3.0) == 3 * gib  # memory_budget_gb, as given


def test_a_ray_task_knows_its_fraction_of_a_gpu():
    """What budget_bytes reads in a shard: the fraction Ray assigned (a logical GPU of a loopback cluster here)."""
    ray = pytest.importorskip("ray")
    from harness.runner.cluster import loopback_only
    from tests.runner_helpers import short_temp_dir

    loopback_only()
    with short_temp_dir() as temp:
        ray.init(num_cpus=1, num_gpus=1, include_dashboard=False, _temp_dir=temp, _node_ip_address="127.0.0.1",
                 log_to_driver=False)
        try:
            share = ray.remote(num_gpus=0.25, num_cpus=0)(memory.gpu_fraction)
            whole = ray.remote(num_gpus=1, num_cpus=0)(memory.gpu_fraction)
            assert ray.get([share.remote(), whole.remote()]) == [0.25, 1.0]
            assert memory.gpu_fraction() == 1.0  # the driver holds no GPU
        finally:
            ray.shutdown()
