"""`kkt`: the stationarity attack of section 3, fast.

Same loss as `kkt-reference`, computed in closed form (objective.py) in float32, for a population
of restarts stacked in one batched computation, each restart with its own lr / alpha /
lambda_min, optimised with Adam (per-restart step sizes), started from what the head's first
layer reveals (priors.py), optionally kept in W1's row space, and pruned by successive halving on
the loss alone (search.py). Everything that steers it is data-free: the KKT loss and the head.
"""

from __future__ import annotations

import time
from typing import Literal

import torch
from pydantic import Field, model_validator
from tqdm.auto import tqdm

from harness.attacks.base import Attack, AttackResult, RunRecord, Victim
from harness.attacks.common import KKTParams, check_victim, default_typical_norm
from harness.attacks.margins import balanced_labels, head_form
from harness.attacks.objective import (
    HeadTensors, lambda_penalty, preact_rms, prior_penalty, project_sphere_, residual_sq,
)
from harness.attacks.priors import init_candidates, row_space
from harness.attacks import search


class KKTFastParams(KKTParams):
    optimizer: Literal["adam", "sgd", "mixed"] = Field(
        "adam", description="mixed: alternate restarts use sgd-momentum and adam (they find different basins)")
    lr: float | None = Field(None, gt=0, description="fixed step size (relative to the input norm)")
    lr_range: tuple[float, float] = Field((3e-3, 3e-2), description="log-uniform range when lr is unset")
    momentum: float = Field(0.9, ge=0, lt=1, description="sgd only")
    init: Literal["rows", "random", "subspace"] = Field(
        "rows", description="starting candidates: rows of W1 (oriented by class), Gaussian, or Gaussian in W1's row space")
    init_scale: float = Field(1.0, gt=0, description="initial candidate norm / typical input norm")
    lambda_min: float = Field(0.05, gt=0, description="lambda_min relative to the fitted lambda scale")
    alpha_start: float = Field(20.0, gt=0, description="modified-ReLU slope sigmoid(alpha z) at the first iteration")
    alpha_end: float = Field(20.0, gt=0, description="the slope at the last iteration (annealed log-linearly)")
    alpha_relative: bool = Field(True, description="alpha per layer / RMS pre-activation of the initial candidates")
    subspace: int | Literal["off", "auto"] = Field("auto", description="keep candidates in W1's row space")
    subspace_tol: float = Field(1e-4, gt=0, lt=1, description="'auto' keeps singular values >= tol * the largest")
    rungs: int = Field(3, ge=0, le=20, description="successive-halving prunes per bracket")
    eta: int = Field(2, ge=2, description="keep 1/eta of the restarts at each rung")
    brackets: int = Field(1, ge=1, description="rounds of restarts; later rounds reuse good settings")
    dtype: Literal["float32", "float64"] = Field("float32", description="precision of the search")
    keep: Literal["survivors", "all"] = Field("survivors", description="candidates of pruned restarts too ('all'), or not")

    @model_validator(mode="after")
    def _ranges(self):
        lo, hi = self.lr_range
        if not (0 < lo <= hi):
            raise ValueError(f"lr_range must satisfy 0 < lo <= hi, got {self.lr_range}")
        if isinstance(self.subspace, int) and self.subspace < 1:
            raise ValueError("subspace must be 'off', 'auto' or a rank >= 1")
        return self


class KKT(Attack):
    name = "kkt"
    Params = KKTFastParams

    def reconstruct(self, victim: Victim, progress: bool = True, start: torch.Tensor | None = None) -> AttackResult:
        check_victim(victim)
        p: KKTFastParams = self.params
        t0 = time.perf_counter()
        dt = torch.float32 if p.dtype == "float32" else torch.float64
        ht = HeadTensors.of(victim.head, dt)
        form = head_form(victim.loss, victim.head.out_dim)
        ctx = _Context(p, victim, ht, form, dt)
        if start is not None:
            if start.dim() != 3 or start.shape[0] != p.restarts or start.shape[1:] != (p.m, victim.dim):
                raise ValueError(f"start must be (restarts, m, d) = ({p.restarts}, {p.m}, {victim.dim}), got {tuple(start.shape)}")
            ctx.start = start.to(dt)
        gen = torch.Generator().manual_seed(p.seed)
        runs: list[RunRecord] = []
        out: list[tuple] = []
        total_its = p.brackets * p.iterations
        bar = tqdm(total=total_its, desc="kkt", disable=not progress, leave=False)
        best_lr = None
        for b in range(p.brackets):
            if p.time_budget_s and time.perf_counter() - t0 > p.time_budget_s:
                break
            lr = self._lrs(p, gen, best_lr)
            br_runs, br_out = ctx.bracket(len(runs), lr, gen, bar, t0)
            runs += br_runs
            out += br_out
            ok = [r for r in br_runs if r.status == "ok"]
            if ok:
                ok.sort(key=lambda r: r.final_loss)
                best_lr = torch.tensor([r.settings["lr"] for r in ok[: max(1, len(ok) // 2)]], dtype=torch.float64)
        bar.close()
        d = victim.dim
        if out:
            X = torch.cat([o[0] for o in out]).float()
            Lm = torch.cat([o[1] for o in out]).float()
            ids = torch.cat([torch.full((len(o[0]),), o[2]) for o in out])
            Y = torch.cat([ctx.labels.clone() for _ in out])
        else:
            X, Lm = torch.empty(0, d), torch.empty(0)
            ids, Y = torch.empty(0, dtype=torch.long), torch.empty(0, dtype=torch.long)
        return AttackResult(X, Y, Lm, ids, runs, p.model_dump(), wall_s=time.perf_counter() - t0)

    @staticmethod
    def _lrs(p: KKTFastParams, gen, best_lr) -> torch.Tensor:
        if p.lr is not None:
            return torch.full((p.restarts,), p.lr, dtype=torch.float64)
        if best_lr is not None:
            return search.around(best_lr, p.restarts, 0.5, *p.lr_range, gen)
        return search.log_uniform(*p.lr_range, p.restarts, gen)


class _Context:
    """Per-victim state shared by the brackets."""

    def __init__(self, p: KKTFastParams, victim: Victim, ht: HeadTensors, form, dt):
        self.p, self.victim, self.ht, self.form, self.dt = p, victim, ht, form, dt
        self.typ = default_typical_norm(victim)
        self.frame = victim.frame.to(dt)
        self.mean = self.frame.mean
        self.labels = balanced_labels(p.m, victim.num_classes)
        self.basis = None
        if p.subspace != "off" or p.init == "subspace":
            rank = p.subspace if isinstance(p.subspace, int) else None
            self.basis = row_space(ht.weights[0], rank, p.subspace_tol)
        self.ht_full = ht
        if p.subspace != "off":
            # Candidates live in coordinates c of W1's row space, x = c V^T. The loss is unchanged:
            # ||W1 - G1||^2 = ||W1 V - G1c||^2 + const, and x_i.x_j = c_i.c_j (V orthonormal).
            ws = [ht.weights[0] @ self.basis, *ht.weights[1:]]
            self.ht = HeadTensors(ws, ht.biases, ht.theta_sq)
            self.mean_c = self.mean @ self.basis
            self.sphere_r2 = float(1 - self.mean.pow(2).sum() + self.mean_c.pow(2).sum())
        self.lam_dim = (victim.head.out_dim,) if form == "regression" else ()
        self.start: torch.Tensor | None = None

    def losses(self, x, lam, lam_scale, lmin, alpha):
        alpha = [alpha / s for s in self.zscale]
        res = residual_sq(self.ht, x, lam, self.labels, self.form, alpha) / self.ht.theta_sq.to(x.dtype)
        rel_lam = lam / lam_scale.view(-1, *([1] * (lam.dim() - 1)))
        pen = lambda_penalty(rel_lam, lmin.view(-1, 1), self.form)
        xf = self.full(x) if self.victim.prior == "box" else x
        pri = prior_penalty(xf, self.victim.prior, self.frame, self.typ, self.victim.box) / self.typ**2
        return res, res + pen + self.p.prior_weight * pri

    def full(self, x):
        """Candidates in input space (centred)."""
        return x @ self.basis.T if self.p.subspace != "off" else x

    def project_(self, x):
        if self.victim.prior != "sphere":
            return
        with torch.no_grad():
            if self.p.subspace == "off":
                project_sphere_(x, self.frame)
            elif self.frame.scale is not None:  # along the ray in embedding space, then back into the row space
                xf = self.full(x)
                project_sphere_(xf, self.frame)
                x.copy_(xf @ self.basis)
            else:  # the unit sphere of uncentred inputs, cut by the row space
                u = x + self.mean_c
                x.copy_(u / u.norm(dim=-1, keepdim=True).clamp_min(1e-12) * max(self.sphere_r2, 1e-6) ** 0.5 - self.mean_c)

    def bracket(self, first_id: int, lr: torch.Tensor, gen, bar, t0):
        p, dt, R = self.p, self.dt, p_restarts(self.p)
        w1, w2 = self.ht_full.weights[0], self.ht.weights[1]
        if self.start is not None:
            x = self.start.clone()
        else:
            x = init_candidates(p.init, w1, w2, self.labels, self.form, R, p.init_scale * self.typ, self.basis, gen)
        if p.subspace != "off":
            x = x @ self.basis
        self.project_(x)
        self.zscale = preact_rms(self.ht, x) if p.alpha_relative else [1.0] * (len(self.ht.weights) - 1)
        a0 = torch.full((R,), p.alpha_start, dtype=dt)
        a1 = torch.full((R,), p.alpha_end, dtype=dt)
        lmin = torch.full((R,), p.lambda_min, dtype=dt)
        lam_scale = self._fit_scale(x, a0)
        lam = lam_scale.view(R, 1, *[1] * len(self.lam_dim)).expand(R, p.m, *self.lam_dim).clone()
        if self.form == "regression":
            lam = lam * 0.01 * torch.randn(lam.shape, generator=gen, dtype=dt)
        ids = torch.arange(first_id, first_id + R)
        step = lr.to(dt)
        opt = _Opt(p, [x, lam], [step * self.typ, step * lam_scale.abs()])
        settings = {int(i): {"lr": float(lr[k]), "alpha_start": p.alpha_start, "alpha_end": p.alpha_end,
                             "lambda_min": p.lambda_min, "init": p.init, "lambda_scale": float(lam_scale[k]),
                             "subspace_rank": None if self.basis is None else int(self.basis.shape[1]),
                             "optimizer": opt.optimizer_of(k)}
                    for k, i in enumerate(ids)}
        curves = {int(i): [] for i in ids}
        status, its, finals, out = {}, {}, {}, []
        rungs = set(search.rung_iterations(p.iterations, p.rungs, p.eta))
        t_start = time.perf_counter()
        it = 0
        for it in range(p.iterations):
            alpha = search.alpha_at(it, p.iterations, a0, a1).view(-1, 1, 1)
            x.requires_grad_(True)
            lam.requires_grad_(True)
            res, loss = self.losses(x, lam, lam_scale, lmin, alpha)
            gx, gl = torch.autograd.grad(loss.sum(), [x, lam])
            x, lam = x.detach(), lam.detach()
            bad = ~torch.isfinite(loss.detach()) | ~torch.isfinite(gx).flatten(1).all(1) | _broken(res.detach())
            if it % p.curve_every == 0:
                for k, i in enumerate(ids.tolist()):
                    curves[i].append(float(loss[k].detach()))
            keep = None
            if bad.any():
                for k in torch.nonzero(bad).flatten().tolist():
                    i = int(ids[k])
                    status[i], its[i], finals[i] = "diverged", it + 1, float("nan")
                keep = torch.nonzero(~bad).flatten()
            opt.step([x, lam], [gx, gl])
            self.project_(x)
            bar.update(1)
            timeout = p.time_budget_s and time.perf_counter() - t0 > p.time_budget_s
            if (it + 1) in rungs and not timeout:
                cand = keep if keep is not None else torch.arange(len(ids))
                best = cand[search.survivors(res.detach()[cand], 1 / p.eta)]
                for k in cand.tolist():
                    if k not in set(best.tolist()):
                        i = int(ids[k])
                        status[i], its[i], finals[i] = "pruned", it + 1, float(res[k].detach())
                        if p.keep == "all":
                            out.append((self.full(x[k]).clone(), lam[k].clone(), i))
                keep = best.sort().values
            if keep is not None:
                x, lam, ids = x[keep], lam[keep], ids[keep]
                lam_scale, lmin, a0, a1 = lam_scale[keep], lmin[keep], a0[keep], a1[keep]
                opt.select(keep)
            if len(ids) == 0 or timeout:
                break
        bar.update(p.iterations - 1 - it)
        if len(ids):
            with torch.no_grad():
                res, _ = self.losses(x, lam, lam_scale, lmin, a1.view(-1, 1, 1))
            broken = (_broken(res) | ~torch.isfinite(x).flatten(1).all(1)).tolist()
            for k, i in enumerate(ids.tolist()):
                if broken[k]:
                    status[i], its[i], finals[i] = "diverged", it + 1, float("nan")
                    continue
                status[i], its[i], finals[i] = "ok", it + 1, float(res[k])
                out.append((self.full(x[k]).clone(), lam[k].clone(), i))
        wall = time.perf_counter() - t_start
        # an ok run ends before its iteration budget only when the opt-in time_budget_s cut it
        stop = {i: status[i] if status[i] != "ok" else "time_budget" if its[i] < p.iterations else "iterations" for i in settings}
        runs = [RunRecord(i, settings[i], status[i], its[i], finals[i], wall, curves[i], stop[i]) for i in sorted(settings)]
        return runs, out

    @torch.no_grad()
    def _fit_scale(self, x, alpha) -> torch.Tensor:
        """Per restart, the common lambda s minimising ||theta - s G(lambda=1)||^2 (from f(0), f(1), f(2))."""
        R = x.shape[0]
        one = torch.ones(R, self.p.m, *self.lam_dim, dtype=x.dtype)
        a = [alpha.view(-1, 1, 1) / s for s in self.zscale]
        f0 = self.ht.theta_sq.to(x.dtype)
        f1 = residual_sq(self.ht, x, one, self.labels, self.form, a)
        f2 = residual_sq(self.ht, x, 2 * one, self.labels, self.form, a)
        bq = (f2 - 2 * f1 + f0) / 2
        aq = (f0 - f1 + bq) / 2
        s = (aq / bq.clamp_min(1e-30)).abs()
        return torch.where(torch.isfinite(s) & (s > 0), s, torch.ones_like(s))


def _broken(res: torch.Tensor) -> torch.Tensor:
    """Runs whose relative residual left its valid range: it is a sum of squares (>= 0), computed
    in closed form as ||theta||^2 - 2<theta, G> + ||G||^2, which cancels catastrophically when a
    run blows up; an optimiser then chases the rounding error to -inf. Such runs count as diverged."""
    return ~torch.isfinite(res) | (res < -1e-3) | (res > 1e4)


def p_restarts(p: KKTFastParams) -> int:
    return p.restarts


class _Opt:
    """Adam or SGD-momentum with one step size per restart (leading dim), on plain tensors;
    'mixed' runs SGD-momentum on even restarts and Adam on odd ones, in the same batch."""

    def __init__(self, p: KKTFastParams, tensors, lrs):
        self.mom = p.momentum
        R = tensors[0].shape[0]
        sgd = {"sgd": torch.ones(R, dtype=torch.bool), "adam": torch.zeros(R, dtype=torch.bool),
               "mixed": torch.arange(R) % 2 == 0}[p.optimizer]
        self.sgd = [sgd.view(-1, *[1] * (t.dim() - 1)) for t in tensors]
        self.any_sgd, self.all_sgd = bool(sgd.any()), bool(sgd.all())
        self.lrs = [lr.view(-1, *[1] * (t.dim() - 1)) for lr, t in zip(lrs, tensors)]
        self.m = [torch.zeros_like(t) for t in tensors]
        self.v = [torch.zeros_like(t) for t in tensors]
        self.t = 0

    def optimizer_of(self, k: int) -> str:
        return "sgd" if bool(self.sgd[0].flatten()[k]) else "adam"

    def step(self, tensors, grads):
        self.t += 1
        b1, b2 = 0.9, 0.999
        for t, g, m, v, lr, sgd in zip(tensors, grads, self.m, self.v, self.lrs, self.sgd):
            g = torch.nan_to_num(g, nan=0.0, posinf=0.0, neginf=0.0)
            if self.all_sgd:
                m.mul_(self.mom).add_(g)
                t.sub_(lr * m)
                continue
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            if not self.any_sgd:  # plain Adam: in place, no second branch
                m.mul_(b1).add_(g, alpha=1 - b1)
                t.sub_(lr * (m / (1 - b1**self.t)) / ((v / (1 - b2**self.t)).sqrt() + 1e-12))
                continue
            # mixed: m holds the momentum buffer for SGD restarts and Adam's first moment for the others
            m.copy_(torch.where(sgd, m * self.mom + g, m * b1 + (1 - b1) * g))
            adam = (m / (1 - b1**self.t)) / ((v / (1 - b2**self.t)).sqrt() + 1e-12)
            t.sub_(lr * torch.where(sgd, m, adam))

    def select(self, keep):
        self.m = [m[keep] for m in self.m]
        self.v = [v[keep] for v in self.v]
        self.lrs = [lr[keep] for lr in self.lrs]
        self.sgd = [s[keep] for s in self.sgd]
        self.any_sgd, self.all_sgd = bool(self.sgd[0].any()), bool(self.sgd[0].all())
