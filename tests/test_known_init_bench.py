"""bench/known_init.py's pieces: its Jacobian is autograd's, and its residual is zero for an exact KKT sum."""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import known_init  # noqa: E402

from harness.heads.mlp import MLPHead  # noqa: E402


def _head(seed: int = 0) -> list[torch.Tensor]:
    torch.manual_seed(seed)
    return [p.detach().double() for p in MLPHead([6, 5, 1], bias="all").parameters()]


def test_jacobian_matches_autograd_per_row():
    params = _head()
    x = torch.randn(4, 6, dtype=torch.float64)
    head = MLPHead([6, 5, 1], bias="all").double()
    with torch.no_grad():
        for p, v in zip(head.parameters(), params):
            p.copy_(v)
    rows = []
    for xi in x:
        g = torch.autograd.grad(head(xi[None])[0, 0], list(head.parameters()))
        rows.append(torch.cat([t.flatten() for t in g]))
    torch.testing.assert_close(known_init.jacobian(params, x, None), torch.stack(rows))


def test_residual_is_zero_for_a_kkt_sum_and_not_for_other_points():
    params = _head(1)
    x = torch.randn(3, 6, dtype=torch.float64)
    target = known_init.jacobian(params, x, None).T @ torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    assert float(known_init.residual(target, params, x)) < 1e-6
    assert float(known_init.residual(target, params, torch.randn(3, 6, dtype=torch.float64))) > 0.05


def test_search_lowers_the_residual():
    params = _head(2)
    x = torch.randn(3, 6, dtype=torch.float64)
    target = known_init.jacobian(params, x, None).T @ torch.ones(3, dtype=torch.float64)
    start = x + 0.5 * torch.randn(3, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    end = known_init.search(target, params, start, float(x.norm(dim=1).max()), 200)
    assert float(known_init.residual(target, params, end)) < float(known_init.residual(target, params, start))
