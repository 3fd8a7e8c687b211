"""`kkt`'s reduced-precision products: the flag is set for the search's passes only, decisions and reports
stay at full precision, and the search still finds planted members."""

import pytest
import torch

from harness.attacks import make_attack, precision
from harness.attacks.kkt import KKTFastParams
from harness.attacks.objective import HeadTensors, residual_sq
from harness.attacks.margins import balanced_labels
from harness.heads.mlp import MLPHead
from harness.scoring.embedding import match

from tests.test_attack_kkt import planted  # noqa: F401  (the module's planted victim)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_the_setting_holds_inside_the_block_only_even_on_error():
    cpu = torch.device("cpu")
    before = torch.get_float32_matmul_precision()
    with precision.products("reduced", cpu):
        assert torch.get_float32_matmul_precision() == "medium"  # oneDNN: bfloat16 products
    assert torch.get_float32_matmul_precision() == before
    with pytest.raises(RuntimeError), precision.products("reduced", cpu):
        raise RuntimeError("a failing pass")
    assert torch.get_float32_matmul_precision() == before
    with precision.products("reduced", torch.device("cuda")):  # only the setting: no CUDA device is needed
        assert torch.get_float32_matmul_precision() == "high"  # TF32
    with precision.products("full", cpu):
        assert torch.get_float32_matmul_precision() == before


@pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason="oneDNN not in this torch build")
def test_reduced_products_stay_close_to_full_ones_far_from_a_minimum():
    torch.manual_seed(0)
    head = MLPHead([64, 256, 1]).scale_init_(0.1)
    ht = HeadTensors.of(head)
    x, lam = torch.randn(2, 48, 64), torch.rand(2, 48)
    labels = balanced_labels(48, 2, "cpu")
    full = residual_sq(ht, x, lam, labels, "binary", 20.0)
    with precision.products("reduced", torch.device("cpu")):
        reduced = residual_sq(ht, x, lam, labels, "binary", 20.0)
    assert torch.allclose(reduced, full, rtol=0.02), (reduced, full)


def test_reduced_products_need_float32():
    with pytest.raises(ValueError, match="products 'reduced'"):
        KKTFastParams(products="reduced", dtype="float64")


def test_a_reduced_search_finds_the_planted_members_and_reports_full_precision_residuals(planted):  # noqa: F811
    victim, _, members, _ = planted
    params = {"m": 8, "restarts": 16, "iterations": 800, "rungs": 2, "seed": 0}
    res = make_attack("kkt", {**params, "products": "reduced"}).reconstruct(victim, progress=False)
    scores = match(res.candidates, members, torch.randn(200, 8, generator=torch.Generator().manual_seed(9)))
    assert scores.member_best.min() > 0.95, scores.member_best
    assert {r.settings["products"] for r in res.runs} == {"reduced"}
    ok = [r for r in res.runs if r.status == "ok"]
    assert ok and all(r.final_loss >= 0 for r in ok)
    # the same search at full precision ends at residuals of the same order (the reported ones are full precision)
    full = make_attack("kkt", params).reconstruct(victim, progress=False)
    best = lambda rr: min(r.final_loss for r in rr.runs if r.status == "ok")  # noqa: E731
    assert best(res) < 10 * best(full) + 1e-6


def test_a_rung_judges_its_full_precision_residuals_by_the_full_bound(planted, monkeypatch):  # noqa: F811
    """At a rung a reduced search recomputes residuals at full precision; one at -0.01 is a blow-up there
    (full bound -1e-3), although a reduced pass's residual may read that low."""
    from harness.attacks import kkt_context

    victim = planted[0]
    real = kkt_context.Context.residuals

    def low_first(self, x, *args):
        res = real(self, x, *args)
        res[0] = -0.01  # the rung's residual of the first restart
        return res

    monkeypatch.setattr(kkt_context.Context, "residuals", low_first)
    params = {"m": 8, "restarts": 4, "iterations": 20, "rungs": 1, "seed": 0, "products": "reduced"}
    runs = make_attack("kkt", params).reconstruct(victim, progress=False).runs
    assert runs[0].status == "diverged" and runs[0].iterations < 20, runs[0]
