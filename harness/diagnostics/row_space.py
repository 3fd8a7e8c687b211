"""How many members the first layer's numerically significant directions hold: an upper bound on what a search in
W1's row space can give back.

At a stationary point W1 = sum_i lambda_i delta_i x_i^T, so W1's row space is spanned by the members that carry the
fit; a member whose lambda is tiny leaves its direction below the singular values `kkt` keeps (`subspace: auto`:
1e-4 of the largest, or the noise floor of W1's random part where that is lower). Cut into those directions, such a
member loses its identity: its cosine to its own cut falls, and no candidate in the row space can come closer to it
than that cut does. Counted at the scoring rule (cosine
> 0.8 in the centred embedding space the attack is scored in), this reads the members, like the oracle residual.
"""

from __future__ import annotations

import torch

from harness.attacks.priors import ROW_SPACE_TOL, row_space
from harness.heads.mlp import MLPHead
from harness.scoring.verdict import GOOD_COSINE
from harness.victims.frame import Frame


@torch.no_grad()
def members_in_row_space(head: MLPHead, frame: Frame, x: torch.Tensor, tol: float = ROW_SPACE_TOL,
                         cosine: float = GOOD_COSINE, noise: bool = True) -> int:
    """Training rows x (in the head's frame) whose cut into W1's row space (`priors.row_space`, as `subspace: auto`
    cuts it: singular values >= tol x the largest, or above the noise floor with `noise`) keeps cosine > `cosine` to
    them, both as embeddings centred on the rows' mean."""
    w1 = head.layers[0].weight.detach().double()
    basis = row_space(w1, None, tol, noise)
    f = frame.to(torch.float64)
    x = x.double()
    raw, cut = f.to_raw(x), f.to_raw(x @ basis @ basis.T)
    mean = raw.mean(0)
    cos = torch.nn.functional.cosine_similarity(raw - mean, cut - mean, dim=1)
    return int((cos > cosine).sum())
