"""sklearn-mlp victims attacked with a model of their initialisation: what knowing the training seed gives.

    python bench/known_init.py [--data sst2,fortunes:science,politics] [--n 10] [--seed 0] [--iterations 600]

An `sklearn-mlp` head (standardize transform; Glorot init, Adam, L2 1e-4, its early stop) moves little
from its initialisation (the plain KKT attack's oracle residual is ~0.99: the init dominates the
weights). An attacker who knows the init (the seed published with the head, or a default like 0 or 42;
here the harness's own seed) can subtract it and attack theta - theta0 instead. Per data set it prints:
- the relative KKT residual at the members (oracle, least-squares lambda, hard ReLU) against theta and
  against theta - theta0, and the same for as many non-members;
- the share of |W1 - W1_0|^2 in the members' span (a random span of that size holds k / d);
- membership from the update alone: TPR@1%FPR of matching the rows of W1 - W1_0 (and its top principal
  directions) to members vs non-members, and members at cosine > 0.8;
- the KKT attack on theta - theta0 (lambda solved exactly per step, Adam on x, the norm prior): a planted
  start at the members + 30% noise, and a search from scratch (m = 2n, 2 restarts): residual reached
  and members at cosine > 0.8. One hidden layer only (the sklearn-mlp default).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's harness, not an installed one
sys.path.insert(0, str(Path(__file__).resolve().parent))
warnings.filterwarnings("ignore")

import recipes  # noqa: E402

from harness.scoring.embedding import match  # noqa: E402
from harness.victims.trainers.sklearn_mlp import SklearnMLP  # noqa: E402

say = recipes.say


def jacobian(params: list[torch.Tensor], x: torch.Tensor, alpha: float | None) -> torch.Tensor:
    """Rows d f(x_j) / d theta (m, P) of a 1-hidden-layer ReLU head (W1, b1, W2, b2); with `alpha`, the
    modified ReLU's slope sigmoid(alpha z / rms z) (differentiable in x), else the ReLU's step."""
    w1, b1, w2, _ = params
    z = x @ w1.T + b1
    s = torch.sigmoid(alpha * z / z.detach().pow(2).mean().sqrt()) if alpha else (z > 0).to(x)
    d1 = w2[0] * s
    return torch.cat([(d1[:, :, None] * x[:, None, :]).flatten(1), d1, z.clamp_min(0), torch.ones_like(z[:, :1])], 1)


def residual(target: torch.Tensor, params, x: torch.Tensor, alpha: float | None = None) -> torch.Tensor:
    """min over lambda of |target - J^T lambda| / |target| (lambda by the normal equations)."""
    j = jacobian(params, x, alpha)
    lam = torch.linalg.solve(j @ j.T + 1e-8 * torch.eye(len(x), dtype=x.dtype), j @ target)
    return (target - j.T @ lam).norm() / target.norm()


def search(target, params, start: torch.Tensor, norm: float, iterations: int) -> torch.Tensor:
    """Adam on the candidates x of the known-init KKT loss plus the norm prior (|x| <= the public norm)."""
    x = start.clone().requires_grad_(True)
    opt = torch.optim.Adam([x], lr=0.02 * norm / start.shape[1] ** 0.5)
    for _ in range(iterations):
        opt.zero_grad()
        loss = residual(target, params, x, 3.0) ** 2 + ((x.norm(dim=1) - norm).clamp_min(0) ** 2).mean() / norm**2
        loss.backward()
        opt.step()
    return x.detach()


def one(name: str, n: int, seed: int, iterations: int) -> None:
    d = recipes.load(name, n, seed)
    if d is None:
        say(f"  {name}: data not available here; skipped (RECON_SHARED_DATA; fortunes or apt lists: README)")
        return
    v, _, _ = recipes.victim(d, recipes.RECIPES["standardize+sklearn-mlp"], False, seed, "real")
    if len(v.head.layers) != 2:
        say(f"  {name}: {len(v.head.layers) - 1} hidden layers; this bench takes one")
        return
    trainer = SklearnMLP(v.recipe.params)  # the victim's own trainer rebuilds its starting head from the seed
    init = trainer.initial_head(v.head.in_dim, v.head.out_dim, torch.Generator().manual_seed(seed))
    params = [p.detach().double() for p in v.head.parameters()]
    theta = torch.cat([p.flatten() for p in params])
    delta = theta - torch.cat([p.detach().double().flatten() for p in init.parameters()])
    x = v.frame.apply(d["members"].float()).double()
    public = v.frame.apply(d["public"].float()).double()
    norm = float(public.norm(dim=1).median())
    say(f"  {name}: {len(x)} members, test acc {v.test_acc:.2f}, {v.report.steps} epochs ({v.report.stopped_by}), "
        f"|theta - theta0| / |theta0| {float(delta.norm() / (theta - delta).norm()):.3f}")
    for label, t in (("theta (plain KKT)", theta), ("theta - theta0 (known init)", delta)):
        say(f"    residual |t - J'lam|/|t| (least squares, not squared) vs {label:<28} members {float(residual(t, params, x)):.3f}, "
            f"{len(x)} non-members {float(residual(t, params, public[: len(x)])):.3f}")
    dw1 = (v.head.layers[0].weight - init.layers[0].weight).detach().double()
    q, _ = torch.linalg.qr(x.T)
    share = float((dw1 @ q).pow(2).sum() / dw1.pow(2).sum())
    say(f"    share of |W1 - W1_0|^2 in the members' span: {share:.2f} (a random {len(x)}-d span: {len(x) / x.shape[1]:.2f})")
    signed = dw1 * params[2][0].sign()[:, None]
    top = torch.linalg.svd(signed, full_matrices=False)[2][: len(x)]
    for label, rows in (("rows of W1 - W1_0", signed), (f"top {len(x)} directions of W1 - W1_0", top),
                        ("rows of W1 (init not known)", params[0])):
        s = match(torch.cat([rows, -rows]).float(), x.float(), public.float())
        say(f"    membership from {label:<30} TPR@1%FPR {s.tpr:.2f}, members at cosine > 0.8: "
            f"{int((s.member_best > 0.8).sum())}/{len(x)} (mean best {float(s.member_best.mean()):.2f})")
    gen = torch.Generator().manual_seed(seed)
    noisy = x + 0.3 * x.norm(dim=1, keepdim=True) * torch.randn(x.shape, generator=gen, dtype=x.dtype) / x.shape[1] ** 0.5
    starts = {"planted (members + 30% noise)": [noisy],
              f"from scratch (m {2 * len(x)}, 2 restarts)": [torch.randn(2 * len(x), x.shape[1], generator=gen, dtype=x.dtype)
                                                            * norm / x.shape[1] ** 0.5 for _ in range(2)]}
    for label, group in starts.items():
        ends = [search(delta, params, s, norm, iterations) for s in group]
        best = min(float(residual(delta, params, e)) for e in ends)
        s = match(torch.cat(ends).float(), x.float(), public.float())
        say(f"    known-init KKT, {label:<30} residual {best:.3f}, members at cosine > 0.8: "
            f"{int((s.member_best > 0.8).sum())}/{len(x)} (mean best {float(s.member_best.mean()):.2f}), TPR {s.tpr:.2f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="sst2,fortunes:science,politics", help="comma list of: sst2, fortunes:CAT_A,CAT_B")
    ap.add_argument("--n", type=int, default=10, help="members per class")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--iterations", type=int, default=600, help="Adam steps of the known-init search")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    say(f"== sklearn-mlp (standardize) with a model of its initialisation: {a.n} members per class, seed {a.seed}")
    for name in recipes.split_names(a.data):
        one(name, a.n, a.seed, a.iterations)
    return 0


if __name__ == "__main__":
    sys.exit(main())
