"""Members that share an activation pattern: the weights hold them only as their group's weighted sum
(harness/diagnostics/patterns.py)."""

import pytest
import torch

from harness.diagnostics.oracle import member_jacobian
from harness.diagnostics.patterns import members_with_own_pattern, own_patterns
from harness.heads.mlp import MLPHead


def _same_pattern(head: MLPHead, a: torch.Tensor, b: torch.Tensor) -> bool:
    return all(bool((pa == pb).all()) for pa, pb in zip(head.activation_patterns(a[None]), head.activation_patterns(b[None])))


@pytest.mark.parametrize("dims,loss", [([8, 32, 1], "logistic"), ([8, 16, 16, 1], "logistic"), ([8, 24, 1], "mse")])
def test_members_that_share_a_pattern_enter_the_gradient_sum_only_through_their_weighted_sum(dims, loss):
    """Rows 0 and 1 share a pattern (1 is 0 nudged): moving them by +u/λ_0 and -u/λ_1 keeps Σ λ_i ∇θ Φ_i exactly,
    so no stationarity condition tells the moved pair from the true one; moving a row with a pattern of its own the
    same way changes the sum."""
    torch.manual_seed(0)
    head = MLPHead(dims, bias="all").double()
    x = torch.randn(6, dims[0], dtype=torch.float64)
    x[1] = x[0] + 1e-3 * torch.randn(dims[0], dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 1, 0, 1]) if loss == "logistic" else torch.linspace(-1, 1, 6, dtype=torch.float64)[:, None]
    assert _same_pattern(head, x[0], x[1]), "precondition: rows 0 and 1 share their pattern"
    own = own_patterns(head, x, tol=0.0)
    assert own.tolist() == [False, False, True, True, True, True]
    assert members_with_own_pattern(head, x, tol=0.0) == 4
    jac = member_jacobian(head, loss, x, labels)
    lam = torch.tensor([0.7, 1.9, 1.3, 0.4, 1.1, 0.8], dtype=torch.float64)
    weights = lam.repeat_interleave(jac.shape[1] // len(x))  # the same λ on each of a member's margins
    total = jac @ weights
    u = 1e-4 * torch.randn(dims[0], dtype=torch.float64)
    moved = x.clone()
    moved[0] += u / lam[0]
    moved[1] -= u / lam[1]
    assert _same_pattern(head, moved[0], x[0]) and _same_pattern(head, moved[1], x[1])
    assert float((moved - x).norm()) > 1e-5
    torch.testing.assert_close(member_jacobian(head, loss, moved, labels) @ weights, total, rtol=0, atol=1e-12)
    lone = x.clone()
    lone[2] += u / lam[2]
    lone[3] -= u / lam[3]
    assert _same_pattern(head, lone[2], x[2]) and _same_pattern(head, lone[3], x[3])
    assert float((member_jacobian(head, loss, lone, labels) @ weights - total).abs().max()) > 1e-8


def _output_jacobian(head: MLPHead, x: torch.Tensor) -> torch.Tensor:
    """(P, n, C): ∇θ h_c(x_i) for every row and output."""
    params = list(head.parameters())
    out = head(x)
    cols = [torch.cat([g.reshape(-1) for g in torch.autograd.grad(out[i, c], params, retain_graph=True)])
            for i in range(len(x)) for c in range(out.shape[1])]
    return torch.stack(cols, 1).reshape(-1, len(x), out.shape[1])


@pytest.mark.parametrize("dims", [[6, 24, 3], [6, 12, 12, 4]])
def test_with_several_outputs_a_shared_pattern_holds_its_members_only_up_to_affine_mixtures(dims):
    """Rows 0-2 share a pattern: mixing them, X' = G X with G's rows summing to 1, and their multipliers, A' = G^-T A,
    keeps Σ_ic α_ic ∇θ h_c(x_i) exactly (one sum per output does not pin a group down); the same mix of rows with
    patterns of their own changes it."""
    torch.manual_seed(1)
    head = MLPHead(dims, bias="all").double()
    x = torch.randn(6, dims[0], dtype=torch.float64)
    x[1] = x[0] + 1e-3 * torch.randn(dims[0], dtype=torch.float64)
    x[2] = x[0] + 1e-3 * torch.randn(dims[0], dtype=torch.float64)
    alpha = torch.rand(6, dims[-1], dtype=torch.float64)
    alpha -= alpha.mean(1, keepdim=True)  # a softmax's pull: each row sums to 0
    total = torch.einsum("pic,ic->p", _output_jacobian(head, x), alpha)
    assert members_with_own_pattern(head, x, tol=0.0) == 3
    mix = torch.tensor([[-2.0, 1, 1], [1, -1, 0], [0, 1, -1]], dtype=torch.float64)  # rows sum to 0
    # the shared group mixed hard (its rows are near-copies: the mix stays in the pattern); the others barely
    for group, step, same in (([0, 1, 2], 0.3, True), ([3, 4, 5], 3e-5, False)):
        g = torch.eye(3, dtype=torch.float64) + step * mix
        mixed, mixed_alpha = x.clone(), alpha.clone()
        mixed[group] = g @ x[group]
        mixed_alpha[group] = torch.linalg.solve(g.T, alpha[group])
        assert all(_same_pattern(head, mixed[i], x[i]) for i in group)
        moved = torch.einsum("pic,ic->p", _output_jacobian(head, mixed), mixed_alpha)
        if same:
            torch.testing.assert_close(moved, total, rtol=0, atol=1e-12)
        else:
            assert float((moved - total).abs().max()) > 1e-9


def test_units_without_weight_do_not_tell_rows_apart_and_heads_without_pieces_have_no_patterns():
    """Two rows that differ only on a unit whose outgoing weight is 0 share a pattern; given weight, the unit tells
    them apart. Linear and tanh heads have no count (None)."""
    head = MLPHead([2, 2, 1], bias="none").double()
    x = torch.tensor([[1.0, 1.0], [1.0, -1.0]], dtype=torch.float64)
    with torch.no_grad():
        head.layers[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))  # unit 0 fires on both, unit 1 on the first
        head.layers[1].weight.copy_(torch.tensor([[1.0, 0.0]]))
        assert members_with_own_pattern(head, x) == 0
        head.layers[1].weight.copy_(torch.tensor([[1.0, 1e-4]]))  # under UNIT_TOL of the largest unit: still none
        assert members_with_own_pattern(head, x) == 0
        head.layers[1].weight.copy_(torch.tensor([[1.0, 0.5]]))
        assert members_with_own_pattern(head, x) == 2
    assert own_patterns(MLPHead([2, 1]), x.float()) is None
    assert own_patterns(MLPHead([2, 4, 1], activation="tanh"), x.float()) is None


def test_a_victim_counts_its_rows_with_a_pattern_of_their_own_and_the_verdict_says_when_rows_share_one():
    """A trained victim whose training rows hold a near-copy (rows 0 and 2, one class) records that the pair shares a
    pattern; the verdict's doubts name the count where members are missing, not where every member came back, nor for a
    victim without a count."""
    from harness.scoring.verdict import doubts
    from harness.specs.task import HeadRecipe
    from harness.victims.build import VictimData, build_victim
    from harness.victims.spec import VictimSpec

    g = torch.Generator().manual_seed(0)
    y = torch.arange(12) % 2
    x = torch.randn(12, 10, generator=g) * 3 + y[:, None] * 2.0
    x[2] = x[0] + 1e-4 * torch.randn(10, generator=g)
    public = torch.randn(40, 10, generator=g) * 3
    data = VictimData(x, y, 2, public, torch.arange(40) % 2, torch.randn(12, 10, generator=g), y.clone())
    head = HeadRecipe(widths=[32], init_scale=0.01, optimizer="adam", lr=0.01, weight_decay=1e-3, max_steps=300)
    v = build_victim(VictimSpec(transform="standardize"), head, data, seed=0)
    own = own_patterns(v.head, v.frame.apply(x))
    assert not own[0] and not own[2] and v.own_pattern == int(own.sum()) <= 10
    said = lambda good, own: doubts("paper", 1.0, 1e-3, 2, None, 0.01, False, good, None, n=12, own=own)  # noqa: E731
    assert any(f"Only {v.own_pattern} of the 12 training rows" in d for d in said(5, v.own_pattern))
    assert not any("pattern of their own" in d for d in said(12, v.own_pattern) + said(5, None) + said(5, 12))


def test_a_near_linear_head_missing_members_is_said_to_be_one_and_the_pattern_count_a_bound():
    """Most units firing on every row (the quickstart's none+paper head: 0.93, 14 of 20 with a pattern of their own, none
    back): the run and the report say the head is near linear there, and the pattern count is read as 'at most'."""
    from harness.report.glance import verdict_html
    from harness.scoring.verdict import NEAR_LINEAR, doubts, linear_doubt

    assert linear_doubt(None) is None and linear_doubt(float("nan")) is None and linear_doubt(NEAR_LINEAR) is None
    assert linear_doubt(0.45) is None  # a head whose units pick their rows
    said = linear_doubt(0.93)
    assert said.startswith("Most of the head's first-layer units fire on every training row (mean share 0.93)")
    both = lambda good, active: doubts("paper", 1.0, 0.009, 2, 0.23, 0.01, False, good, None, n=20, own=14, active=active)  # noqa: E731
    assert said in both(0, 0.93) and any("at most about 14 can come back" in d for d in both(0, 0.93))
    assert said not in both(20, 0.93) and said not in both(0, 0.42) and said not in both(0, None)  # all back; units pick rows
    row = {"n_members": 20, "members_passed": 20, "fpr": 0.01, "good_at_0_8": 0, "good_ssim": None, "threshold": 0.23,
           "head_dims": [384, 1000, 1], "trainer": "paper", "train_acc": 1.0, "oracle_residual": 0.009, "num_classes": 2,
           "victim": "real", "own_pattern": 14, "active_share": 0.93}
    html = verdict_html(row)
    assert "<b>But:</b> Most of the head&#x27;s first-layer units fire on every training row (mean share 0.93)" in html
    assert "Most of the head" not in verdict_html({**row, "victim": "null"})  # a null victim's rows are not the members
