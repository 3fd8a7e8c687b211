"""Members the weights cannot tell apart: training rows that share their activation pattern.

Inside one activation pattern of a ReLU head (which units fire, layer by layer) the head is a single affine map, and
the gradient of any output with respect to θ is affine in the input: ∇θ h(x) = M_P [x; 1], with M_P fixed by the
pattern P. So on a head with one output (a binary margin Φ_i = y_i h(x_i), or one regression output) members i in
a group S that shares a pattern enter the stationarity condition θ = Σ λ_i ∇θ Φ_i only through Σ_{i∈S} λ_i y_i x_i
and Σ_{i∈S} λ_i y_i: any other points of the same region with the same two sums explain θ exactly as well. The KKT loss is flat
along those moves; what the search can give back of such a group is its weighted mean, which matches its members only
where they are alike. With C outputs the group enters through one such sum per output, Aᵀ[X, 1] with A the group's
multipliers (one row a member, one column an output), and that is unchanged by mixing the members, X' = G X with the
rows of G summing to 1, and their multipliers, A' = G⁻ᵀ A: near G = I the mixed members keep the pattern and the
multipliers their signs, so the group is held only up to such affine mixtures of its members. A member whose pattern
no other member shares is the one the conditions single out.

Units whose weight (‖incoming weights‖ x ‖outgoing weights‖) is under UNIT_TOL of their layer's largest are left
out of the patterns: at a stationary point weight decay balances a unit's incoming and outgoing norms, so such a
unit holds at most UNIT_TOL of the largest unit's share of ‖θ‖², what is left of the initialisation rather than
anything the members put there, and far below the residual a search reaches (1e-4 to 1e-3 of ‖θ‖²).
"""

from __future__ import annotations

import torch

from harness.heads.mlp import MLPHead

UNIT_TOL = 1e-3


@torch.no_grad()
def unit_weights(head: MLPHead) -> list[torch.Tensor]:
    """Each hidden layer's units' weight in the head: ‖incoming weights and bias‖ x ‖outgoing weights‖."""
    out = []
    for layer, after in zip(head.layers[:-1], head.layers[1:]):
        w = layer.weight.detach().double()
        incoming = w if layer.bias is None else torch.cat([w, layer.bias.detach().double()[:, None]], 1)
        out.append(incoming.norm(dim=1) * after.weight.detach().double().norm(dim=0))
    return out


@torch.no_grad()
def own_patterns(head: MLPHead, x: torch.Tensor, tol: float = UNIT_TOL) -> torch.Tensor | None:
    """(n,) bool: whether each training row x (in the head's frame) has an activation pattern, over the units that
    carry weight, that no other row shares. None where the count does not apply: a head without hidden layers (its
    weights fix only a weighted sum of the members) or with a tanh activation (no pieces)."""
    if len(head.layers) < 2 or head.activation != "relu":
        return None
    patterns = head.activation_patterns(x.to(head.layers[0].weight.dtype))
    kept = [p[:, w >= tol * w.max()] for p, w in zip(patterns, unit_weights(head)) if float(w.max()) > 0]
    if not kept:
        return torch.zeros(len(x), dtype=torch.bool)  # a dead head: every row shares the empty pattern
    codes = torch.cat(kept, 1)
    _, inverse, counts = torch.unique(codes, dim=0, return_inverse=True, return_counts=True)
    return counts[inverse] == 1


def members_with_own_pattern(head: MLPHead, x: torch.Tensor, tol: float = UNIT_TOL) -> int | None:
    """How many training rows have an activation pattern of their own (own_patterns); None where patterns do not
    apply."""
    own = own_patterns(head, x, tol)
    return None if own is None else int(own.sum())
