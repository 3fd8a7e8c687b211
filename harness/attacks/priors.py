"""Starting points and subspaces read off the head's weights (no members involved), or drawn from
public inputs the attacker holds.

With small initialisation or weight decay, theta = sum_i lambda_i grad Phi_i, so the first layer's
weight W1 = sum_i (backprop signal_i) x_i^T has its rows in the span of the (centred) members:
its leading right-singular vectors span the members, and single rows are members seen through
one unit's activation set. Both are public (they are the head).
"""

from __future__ import annotations

import torch

from harness.attacks.margins import Form
from harness.victims.spec import DEFAULT_TRAINER


PUBLIC_INITS = ("public", "mixed")  # the inits that start candidates at public inputs (init_candidates)


def domain_prior(pixels: bool) -> str:
    """The attack's domain prior: the valid pixel box for raw pixels (the `identity` backbone), the public inputs'
    typical norm for embeddings."""
    return "box" if pixels else "norm"


MIXED_TRAINERS = ("paper",)  # the trainers whose pixel heads give up more members from mixed starts (auto_init)


def auto_init(prior: str, public: int, trainer: str = DEFAULT_TRAINER) -> str:
    """kkt's `init: auto`: mixed starts (rows and public inputs) for a box-prior (pixel) head trained to
    stationarity (the `paper` trainer) where the task has public non-members to split between starts and control
    (at least two), rows otherwise. On those heads at n = 100 mixed starts gave 6-9 more members than rows on
    five CIFAR-10 pairs of five at about rows' TPR, at n = 20 a wash (170 members against 165 over ten draws).
    On heads whose weights do not give up their members (sklearn-mlp, default-torch) public starts cost the
    membership signal (text and pixels), and on embedding heads that leak they give 4-12 more members of 100 at
    a lower TPR every time; whether a head leaks is not known when the start is decided, so those keep rows
    (docs/scale.md, docs/attack.md)."""
    return "mixed" if prior == "box" and trainer in MIXED_TRAINERS and public >= 2 else "rows"


ROW_SPACE_TOL = 1e-4  # `subspace: auto` keeps W1's singular values >= this x the largest (kkt's default subspace_tol)
NOISE_MIN = 1e-6  # the noise floor is never put below this x the largest: a float32 head's rounding sits under it


def noise_floor(s: torch.Tensor, shape: tuple[int, int]) -> float:
    """Where the singular values `s` of a `shape` matrix stop carrying signal: Gavish & Donoho (2014)'s optimal hard
    threshold for a low-rank matrix in white noise of unknown level, omega(beta) x the median singular value (beta the
    aspect ratio; their cubic fit of omega), and at least NOISE_MIN x the largest (an exactly low-rank W1 has a median
    of rounding error). A head trained from a small random start is that: W1 is its members' span plus what weight
    decay left of the initialisation, whose singular values form a flat bulk."""
    beta = min(shape) / max(shape)
    omega = 0.56 * beta**3 - 0.95 * beta**2 + 1.82 * beta + 1.43
    return max(omega * float(s.median()), NOISE_MIN * float(s[0]))


def row_space(w1: torch.Tensor, rank: int | None = None, tol: float = ROW_SPACE_TOL, noise: bool = True) -> torch.Tensor:
    """(d, r) orthonormal basis of W1's leading right-singular vectors.

    Without a fixed `rank`, r counts the singular values >= tol * the largest, and with `noise` also those above the
    noise floor of W1's random part (`noise_floor`), whichever keeps more. Not an energy share:
    a head whose units mostly fire together is near rank 2 (one direction per class), and the
    members are told apart only by singular values 1e-2..1e-4 of the largest (measured on
    MiniLM/SST-2 heads), which any energy cut-off such as 99.9% drops. On pixel heads some members sit
    below 1e-4 of the largest, just above the initialisation's bulk (docs/attack.md, "The row space's cut").

    The SVD runs on the CPU (LAPACK) whatever device `w1` is on, and the basis goes back to that device: a GPU's
    solver may give other signs of the singular vectors (and with them other `init: subspace` starts) and runs
    float64 slowly on most cards.
    """
    _, s, vh = torch.linalg.svd(w1.detach().cpu().double(), full_matrices=False)
    if rank is None:
        cut = tol * float(s[0])
        if noise:
            cut = min(cut, noise_floor(s, tuple(w1.shape)))
        rank = int((s >= cut).sum())
    rank = max(1, min(rank, vh.shape[0]))
    return vh[:rank].T.to(w1.device, w1.dtype).contiguous()


def init_candidates(
    how: str,
    w1: torch.Tensor,
    w2: torch.Tensor,
    labels: torch.Tensor,
    form: Form,
    R: int,
    scale: float,
    basis: torch.Tensor | None,
    gen: torch.Generator,
    public: torch.Tensor | None = None,
) -> torch.Tensor:
    """(R, m, d) starting candidates with norm about `scale`.

    random:   isotropic Gaussian;  subspace: Gaussian inside `basis`;
    rows:     random rows of W1 (drawn in proportion to their norm), oriented for binary heads so
              that the row points to the candidate's class side (sign of the unit's output weight);
    public:   public inputs (k, d) in the head's frame, m distinct ones per restart where k >= m, with
              5% noise, their median norm scaled to `scale` (their own spread of norms kept);
    mixed:    even restarts from rows, odd ones from public inputs.
    """
    m, d = labels.shape[0], w1.shape[1]
    dt = w1.dtype
    if how == "mixed":
        x = init_candidates("rows", w1, w2, labels, form, R, scale, basis, gen)
        if R > 1:  # a single restart starts from rows
            x[1::2] = init_candidates("public", w1, w2, labels, form, R // 2, scale, basis, gen, public)
        return x
    if how == "public":
        if public is None or not len(public):
            raise ValueError("init 'public' needs public inputs")
        pub = public.to(dt)
        k = len(pub)
        idx = (torch.stack([torch.randperm(k, generator=gen)[:m] for _ in range(R)]) if k >= m
               else torch.randint(k, (R, m), generator=gen))
        x = pub[idx]
        x = x + 0.05 * x.norm(dim=-1, keepdim=True) / d**0.5 * torch.randn(x.shape, generator=gen, dtype=dt)
        return x * (scale / pub.norm(dim=1).median().clamp_min(1e-12))
    if how == "random" or (how == "subspace" and basis is None):
        x = torch.randn(R, m, d, generator=gen, dtype=dt)
    elif how == "subspace":
        x = torch.randn(R, m, basis.shape[1], generator=gen, dtype=dt) @ basis.T
    elif how == "rows":
        norms = w1.norm(dim=1)
        idx = torch.multinomial(norms / norms.sum(), R * m, replacement=True, generator=gen)
        x = w1[idx].reshape(R, m, d).clone()
        if form == "binary" and w2.shape[0] == 1:
            y = labels.to(dt) * 2 - 1
            sign = torch.sign(w2[0, idx]).reshape(R, m)
            x = x * (sign * y).unsqueeze(-1)
        x = x + 0.05 * x.norm(dim=-1, keepdim=True) / d**0.5 * torch.randn(x.shape, generator=gen, dtype=dt)
    else:
        raise ValueError(how)
    return x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12) * scale
