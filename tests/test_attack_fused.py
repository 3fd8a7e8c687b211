"""kkt's compiled pass (fused.py): the same residual and gradients as the eager pass, compiled only where
`auto` finds the run long enough, and a compile that fails leaves an eager run that says so once."""

import logging

import pytest
import torch

from harness.attacks import fused, make_attack, precision
from harness.attacks.base import Victim
from harness.attacks.objective import HeadTensors, gram_flags, layer_alphas
from harness.heads.mlp import MLPHead
from harness.victims.frame import Frame


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_victim():
    torch.manual_seed(0)
    head = MLPHead([12, 24, 1]).scale_init_(0.5)
    return Victim(head=head, loss="logistic", num_classes=2, frame=Frame(torch.zeros(12)), prior="norm", typical_norm=2.0)


@pytest.mark.skipif(not fused.cxx_compiler(), reason="torch.compile on a CPU needs a C++ compiler")
def test_compiled_pass_matches_eager_as_restarts_are_pruned():
    """The compiled pass gives the eager residual and gradients, at the batch size it first saw and after
    successive halving shrinks it (the recompile with a symbolic restart count)."""
    torch.manual_seed(1)
    ht = HeadTensors.of(MLPHead([12, 24, 1]).scale_init_(0.5))
    labels = torch.arange(6) % 2
    compiled = fused.Pass(True)
    for R in (8, 4, 3):
        x, lam = torch.randn(R, 6, 12), torch.rand(R, 6)
        alphas = layer_alphas(ht, torch.full((R, 1, 1), 5.0))
        args = (x, lam, torch.rand(R), ht, labels, "binary", alphas, gram_flags(ht, 6))
        for got, want in zip(compiled(*args), fused.eager_pass(*args)):
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    assert compiled.compiled


@pytest.mark.skipif(not fused.cxx_compiler(), reason="torch.compile on a CPU needs a C++ compiler")
@pytest.mark.parametrize("dims, form, gram", [([12, 24, 1], "binary", False), ([12, 24, 16, 3], "multiclass", False),
                                              ([12, 24, 2], "regression", True)])
def test_compiled_pass_matches_eager_in_every_product_form(dims, form, gram):
    """The compiled pass writes a one-output head's matrix-vector products element-wise (skinny.py): the same
    residual and gradients as eager, with explicit G_k and with Gram matrices, one or several outputs."""
    torch.manual_seed(2)
    ht = HeadTensors.of(MLPHead(dims).scale_init_(0.5))
    m, R = 7, 3
    labels = torch.arange(m) % (2 if form == "binary" else dims[-1])
    lam = torch.rand(R, m, dims[-1]) if form == "regression" else torch.rand(R, m)
    alphas = layer_alphas(ht, torch.full((R, 1, 1), 5.0))
    args = (torch.randn(R, m, dims[0]), lam, torch.rand(R), ht, labels, form, alphas, [gram] * len(dims[1:]))
    compiled = fused.Pass(True)
    for got, want in zip(compiled(*args), fused.eager_pass(*args)):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    assert compiled.compiled


@pytest.mark.skipif(not fused.cxx_compiler(), reason="torch.compile on a CPU needs a C++ compiler")
@pytest.mark.parametrize("R", [1, 3])
@pytest.mark.parametrize("dims, form", [([24, 48, 1], "binary"), ([24, 48, 32, 3], "multiclass")])
def test_compiled_pass_with_reduced_products_stays_close_to_the_full_one(R, dims, form):
    """Under reduced products a compiled pass runs its GEMMs on bfloat16 operands and results (skinny.gemm:
    one restart through the 2-d product, several through the batched one; outer products element-wise):
    about as close to the full-precision eager pass as the eager reduced pass (or, on a CPU without bfloat16
    hardware, where that pass is exact, as the eager pass at bfloat16-rounded inputs), and the setting is gone
    after the block."""
    from harness.attacks import skinny

    torch._dynamo.reset()  # its recompile limit counts every shape this process compiled the pass for
    torch.manual_seed(4)
    head = MLPHead(dims, bias="first").scale_init_(0.5)
    ht = HeadTensors.of(head)
    m = 40  # explicit G_k (m (width + fan_in) > width fan_in)
    labels = torch.arange(m) % (2 if form == "binary" else dims[-1])
    alphas = layer_alphas(ht, torch.full((R, 1, 1), 5.0))
    args = (torch.randn(R, m, dims[0]), torch.rand(R, m), torch.rand(R) + 0.5, ht, labels, form, alphas,
            gram_flags(ht, m))
    assert not any(args[-1])
    want = fused.eager_pass(*args)
    # the pass at inputs rounded to bfloat16 (candidates, lambdas, weights): how much this point's pass moves
    # under bfloat16 rounding on any CPU (the eager reduced pass below rounds only where oneDNN has bfloat16
    # hardware: AMX or AVX512-BF16; elsewhere it is exact)
    rounded_head = MLPHead(dims, bias="first")
    rounded_head.load_state_dict({k: v.bfloat16().float() for k, v in head.state_dict().items()})
    rounded = fused.eager_pass(args[0].bfloat16().float(), args[1].bfloat16().float(), args[2],
                               HeadTensors.of(rounded_head), *args[4:])
    compiled = fused.Pass(True)
    with precision.products("reduced", torch.device("cpu")):
        assert skinny.LOW == torch.bfloat16
        got = compiled(*args)
        operands_only = fused.eager_pass(*args)  # eager: oneDNN rounds the operands, not the results
        cast_once = compiled(*args[:3], HeadTensors.of(head).with_low(torch.bfloat16), *args[4:])
    assert skinny.LOW is None and compiled.compiled
    for a, b in zip(cast_once, got):  # weights cast once per run (kkt does) or at every pass: the same pass
        torch.testing.assert_close(a, b)
    err = lambda a, b: float((a - b).norm() / b.norm())  # noqa: E731
    for g, o, r, w in zip(got, operands_only, rounded, want):
        assert g.dtype == w.dtype == torch.float32
        # random points cancel more in some restarts than in others: the bound is the eager reduced pass's own
        # error, or the rounded inputs' where the eager pass does not round
        assert err(g, w) < 4 * max(err(o, w), err(r, w)) + 0.01, (err(g, w), err(o, w), err(r, w))
        assert not torch.equal(g, w)  # the products did round


@pytest.mark.skipif(not fused.cxx_compiler(), reason="torch.compile on a CPU needs a C++ compiler")
@pytest.mark.parametrize("scaled", [False, True])
def test_compiled_box_prior_matches_eager(scaled):
    """The box prior in row-space coordinates (its own compiled pass in kkt): the eager penalty and gradient."""
    from harness.attacks.penalties import box_grad_in_coordinates

    torch.manual_seed(5)
    basis = torch.linalg.qr(torch.randn(30, 12))[0]
    mean, scale = torch.randn(30) * 0.1, (torch.rand(30) + 0.5 if scaled else None)
    args = (torch.randn(3, 5, 12), basis, mean, scale, -1.0, 1.0)
    compiled = fused.Pass(True, box_grad_in_coordinates)
    want = box_grad_in_coordinates(*args)
    assert float(want[0].min()) > 0  # some inputs do leave the box
    for got, w in zip(compiled(*args), want):
        torch.testing.assert_close(got, w, rtol=1e-5, atol=1e-6)
    with precision.products("reduced", torch.device("cpu")):  # bfloat16 GEMMs, the basis cast per pass or once
        per_pass, once = compiled(*args), compiled(*args, basis.to(torch.bfloat16))
    for a, b, w in zip(once, per_pass, want):
        torch.testing.assert_close(a, b)
        assert float((a - w).norm() / w.norm()) < 0.02
    assert compiled.compiled


def test_auto_compiles_long_runs_only():
    """`auto` weighs the planned products (a time budget caps them), never the machine's speed."""
    text = [(1000, 384), (1, 1000)]
    # the quickstart's attack (m 40, 16 restarts x 1000 iterations) starts at once
    assert not fused.wants_compile("auto", 40, text, 16 * 1000)
    # a bench budget of 4 brackets x 32 restarts x 1500 iterations at m = 100 compiles
    assert fused.wants_compile("auto", 100, text, 4 * 32 * 1500)
    # ... unless a short time budget caps what it can do
    assert not fused.wants_compile("auto", 100, text, 4 * 32 * 1500, time_budget_s=30)
    assert fused.wants_compile("auto", 200, text, 64 * 50_000, time_budget_s=3600)
    assert not fused.wants_compile("auto", 200, text, 64 * 50_000, time_budget_s=3600, device="cuda")  # not measured there
    assert fused.wants_compile("on", 4, [(2, 2)], 1) and not fused.wants_compile("off", 200, text, 1e9)


def test_failed_compile_runs_eager_and_says_so_once(monkeypatch, caplog):
    """A compiler that fails (no C++ toolchain, say) leaves the eager pass: the same run as compile off,
    one warning, and `compiled: false` on every run's settings."""

    def broken(fn, **kw):
        def call(*a):
            raise RuntimeError("no C++ compiler found\nlong traceback")
        return call

    monkeypatch.setattr(fused.torch, "compile", broken)
    params = {"m": 6, "restarts": 4, "iterations": 40, "rungs": 1, "seed": 3, "dtype": "float64"}
    with caplog.at_level(logging.WARNING, logger="harness.attacks.fused"):
        on = make_attack("kkt", {**params, "compile": "on"}).reconstruct(tiny_victim(), progress=False)
    off = make_attack("kkt", {**params, "compile": "off"}).reconstruct(tiny_victim(), progress=False)
    notes = [r.message for r in caplog.records if "compile" in r.message]
    assert len(notes) == 1 and "no C++ compiler found" in notes[0] and "traceback" not in notes[0]
    assert [r.final_loss for r in on.runs] == [r.final_loss for r in off.runs]
    assert {r.settings["compiled"] for r in on.runs} == {False}
    assert on.params["compile"] == "on"


@pytest.mark.skipif(not fused.cxx_compiler(), reason="torch.compile on a CPU needs a C++ compiler")
def test_recompile_limit_falls_back_and_says_so(monkeypatch, caplog):
    """Past dynamo's recompile limit (a long-lived worker that compiled many head shapes) dynamo would run
    the pass eager in silence; the pass makes it a failure it reports, and stops claiming `compiled`."""
    import torch._dynamo.config as dynamo_config

    torch.manual_seed(2)
    compiled = fused.Pass(True)
    monkeypatch.setattr(fused, "RECOMPILE_LIMIT", 1)
    with caplog.at_level(logging.WARNING, logger="harness.attacks.fused"):
        for d in (5, 7):  # a second head shape: one compile too many at a limit of 1
            ht = HeadTensors.of(MLPHead([d, 9, 1]))
            x, lam, labels = torch.randn(2, 4, d), torch.rand(2, 4), torch.arange(4) % 2
            args = (x, lam, torch.rand(2), ht, labels, "binary", layer_alphas(ht, torch.full((2, 1, 1), 5.0)), gram_flags(ht, 4))
            for got, want in zip(compiled(*args), fused.eager_pass(*args)):
                torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    notes = [r.message for r in caplog.records if "compiled pass failed" in r.message]
    assert not compiled.compiled and len(notes) == 1 and "RecompileLimit" in notes[0]
    assert dynamo_config.fail_on_recompile_limit_hit is False and dynamo_config.recompile_limit == 8  # the process's own


@pytest.mark.skipif(not fused.cxx_compiler(), reason="torch.compile on a CPU needs a C++ compiler")
@pytest.mark.parametrize("prior,subspace,optimizer", [("sphere", "off", "mixed"), ("box", "auto", "adam")])
def test_compiled_iteration_runs_the_eager_search(prior, subspace, optimizer, caplog):
    """The whole iteration compiled (iteration.py: the pass, the penalties, the optimiser's step on copies, the
    sphere's projection) runs the eager search: the same statuses and, up to rounding, the same residuals and
    candidates, with all restarts in one chunk (the copies become the state) and one restart per chunk (each
    chunk written into the next state's buffers, the state before them reused), as successive halving prunes."""
    torch._dynamo.reset()  # its recompile limit counts every shape this process compiled for
    torch.manual_seed(0)
    scale = torch.rand(12) + 0.5
    victim = Victim(head=MLPHead([12, 24, 1]).scale_init_(0.5), loss="logistic", num_classes=2,
                    frame=Frame(torch.randn(12) * 0.2, scale), prior=prior, typical_norm=2.0, box=(-1.0, 1.0))
    params = {"m": 6, "restarts": 2, "iterations": 30, "rungs": 1, "seed": 3, "dtype": "float64", "optimizer": optimizer,
              "subspace": subspace, "init": "random"}
    for budget in (None, 1e-6):  # 1 KB: no restart fits beside the others' state, so chunks of one
        runs = {c: make_attack("kkt", {**params, "compile": c, "memory_budget_gb": budget}).reconstruct(victim, progress=False)
                for c in ("off", "on")}
        off, on = runs["off"], runs["on"]
        assert [r.status for r in on.runs] == [r.status for r in off.runs] and "pruned" in {r.status for r in off.runs}
        torch.testing.assert_close(torch.tensor([r.final_loss for r in on.runs]), torch.tensor([r.final_loss for r in off.runs]))
        torch.testing.assert_close(on.candidates, off.candidates)
        assert {r.settings["compiled"] for r in on.runs} == {True}
        assert {r.settings["restart_chunk"] for r in on.runs} == ({2} if budget is None else {1})
    # another victim of the same shape (other weights, frame, typical norm, prior weight) reuses the graphs: the
    # iteration's values are inputs, not constants that recompile (a worker would hit the recompile limit)
    from torch._dynamo.utils import counters

    graphs = counters["stats"]["unique_graphs"]
    other = Victim(head=MLPHead([12, 24, 1]).scale_init_(0.8), loss="logistic", num_classes=2,
                   frame=Frame(torch.randn(12) * 0.3, torch.rand(12) + 0.7), prior=prior, typical_norm=3.0, box=(-1.0, 1.0))
    make_attack("kkt", {**params, "compile": "on", "prior_weight": 0.5}).reconstruct(other, progress=False)
    assert counters["stats"]["unique_graphs"] == graphs
    assert not [r for r in caplog.records if "compile" in r.message and "failed" in r.message]
    import torch._dynamo.config as dynamo_config  # held for each bracket's loop (Pass.held), then the process's own again

    assert dynamo_config.fail_on_recompile_limit_hit is False and dynamo_config.recompile_limit == 8
