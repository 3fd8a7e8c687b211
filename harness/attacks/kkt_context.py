"""The per-victim machinery of `kkt` (kkt.py): the head in the search's coordinates, the memory chunking of
the restarts, the compiled iteration pass, the starts, and one bracket of restarts run to its end by successive
halving (search.py). kkt.py holds the parameters and the attack's outer loop over brackets."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import torch

from harness.attacks import fused, iteration, memory, precision, search
from harness.attacks.base import RunRecord, Victim
from harness.attacks.common import default_typical_norm
from harness.attacks.margins import balanced_labels
from harness.attacks.objective import HeadTensors, gram_flags, preact_rms
from harness.attacks.priors import init_candidates, row_space
from harness.attacks.recombine import Pool
from harness.attacks.residual_grad import residual_forward
from harness.attacks.restart_optim import RestartOptimizer
from harness.attacks.sphere import SphereProjection
from harness.victims.frame import Frame

if TYPE_CHECKING:
    from harness.attacks.kkt import KKTFastParams


def _init_of(init: str, k: int) -> str:
    """Where restart k of a bracket started (mixed: rows for even k, public inputs for odd)."""
    return ("rows", "public")[k % 2] if init == "mixed" else init


class Context:
    """Per-victim state shared by the brackets, on the attack's device."""

    def __init__(self, p: KKTFastParams, victim: Victim, ht: HeadTensors, form, dt, dev):
        self.p, self.victim, self.ht, self.form, self.dt, self.dev = p, victim, ht, form, dt, dev
        self.typ = default_typical_norm(victim)
        f = victim.frame
        self.frame = Frame(f.mean.to(dev, dt), None if f.scale is None else f.scale.to(dev, dt), f.l2, f.transform)
        self.labels = balanced_labels(p.m, victim.num_classes, dev)
        self.basis = None
        if p.subspace != "off" or p.init == "subspace":
            rank = p.subspace if isinstance(p.subspace, int) else None
            self.basis = row_space(ht.weights[0], rank, p.subspace_tol, p.subspace_noise)
        self.ht_full = ht
        if p.subspace != "off":
            # Candidates live in coordinates c of W1's row space, x = c V^T. The loss is unchanged:
            # ||W1 - G1||^2 = ||W1 V - G1c||^2 + const, and x_i.x_j = c_i.c_j (V orthonormal).
            ws = [ht.weights[0] @ self.basis, *ht.weights[1:]]
            self.ht = HeadTensors(ws, ht.biases, ht.theta_sq, ht.activation, layer_weights=ht.layer_weights)
        self.lam_dim = (victim.head.out_dim,) if form == "regression" else ()
        self.gram = gram_flags(self.ht, p.m)
        self.start: torch.Tensor | None = None
        self.pool = Pool()
        self.recombined = 0  # restarts of the current bracket started from the pool (the first ones)
        compiled = fused.wants_compile(p.compile, p.m, [tuple(w.shape) for w in self.ht.weights],
                                       float(p.brackets) * p.restarts * p.iterations, p.time_budget_s, dev.type)
        self.chunk = self._chunk(compiled)
        self.step_ = fused.Pass(compiled, iteration.iterate, "iteration")
        self._spare: list[torch.Tensor] | None = None  # a compiled step's next-state buffers (iterate)
        basis_low = None
        if self.step_.compiled and p.products == "reduced" and dev.type == "cpu":  # weights cast once, not every pass
            self.ht.with_low(torch.bfloat16)
            basis_low = None if self.basis is None else self.basis.to(torch.bfloat16)
        in_coords = p.subspace != "off"
        as_t = lambda v: torch.tensor(v, dtype=dt, device=dev)  # noqa: E731
        self.prior = iteration.Prior(
            victim.prior, as_t(p.prior_weight / self.typ**2), self.frame, as_t(self.typ) if self.typ else None, victim.box,
            self.basis if in_coords and victim.prior == "box" else None, basis_low if in_coords else None,
            SphereProjection(self.frame, self.basis if in_coords else None) if victim.prior == "sphere" else None)
        self.theta_sq = self.ht.theta_sq.to(dev, dt)
        self.chunk_note = "" if self.mem_chunk >= p.restarts else (
            f"kkt: {p.restarts} restarts x m {p.m} do not fit the memory budget at once "
            f"({self.budget / 2**30:.1f} GiB); running them in chunks of {self.chunk}")

    def _chunk(self, compiled: bool) -> int:
        """Restarts per iteration pass that fit the memory budget (all of them when they fit); on
        a CPU also no more than run fastest per restart (memory.cpu_chunk: a matter of speed, not said)."""
        p, ws = self.p, self.ht.weights
        coords, item = ws[0].shape[1], torch.finfo(self.dt).bits // 8
        full = self.victim.prior == "box" and p.subspace != "off"
        per_pass = memory.pass_bytes(p.m, [tuple(w.shape) for w in ws], self.victim.dim, item, full)
        per_state = memory.state_bytes(p.m, coords, ws[-1].shape[0], item)
        # a compiled step holds a second state for every restart: its copies of candidates and moments, or the
        # next-state buffers it writes them into (iterate)
        copies = per_state * 3 // 4 if compiled else 0
        self.budget = memory.budget_bytes(self.dev, p.memory_budget_gb)
        self.mem_chunk = memory.restart_chunk(p.restarts, per_pass, per_state + copies, self.budget)
        return self.mem_chunk if self.dev.type != "cpu" else min(self.mem_chunk, memory.cpu_chunk(p.restarts, per_pass))

    def iterate(self, x, lam, lam_scale, lmin, alphas, opt: RestartOptimizer):
        """One search iteration of every restart, chunk by chunk of restarts, its products at the run's precision
        (`products`): (relative residual, loss, broken flag) at (x, lam), and (x, lam) after the step
        (iteration.py). A compiled step returns copies: with one chunk they become the state; with several each
        chunk writes them into a second set of state buffers (`_next`), which then becomes the state, the state
        before it the next iteration's buffers. `alphas`: the slope per hidden layer (alpha_rows)."""
        corr, fresh, one = opt.corrections(), self.step_.compiled, self.chunk >= len(x)
        now = [x, lam, *opt.m, *opt.v]
        into = self._next(now) if fresh and not one else None
        out = []
        with precision.products(self.p.products, self.dev):
            for sl in memory.chunks(len(x), self.chunk):
                if one:  # the whole state: no views to make
                    ms, vs, lrs, sgds, xs, ls, scale, lm = opt.m, opt.v, opt.lrs, opt.sgd, x, lam, lam_scale, lmin
                else:
                    (ms, vs, lrs, sgds), xs, ls, scale, lm = opt.state(sl), x[sl], lam[sl], lam_scale[sl], lmin[sl]
                *scores, nx, nlam, nms, nvs = self.step_(
                    xs, ls, ms, vs, lrs, sgds, corr, opt.mode, opt.mom, fresh, self.theta_sq, scale, lm, self.ht,
                    self.labels, self.form, alphas, self.gram, self.prior, precision.BROKEN_BELOW[self.p.products],
                    None if into is None else [t[sl] for t in into])
                out.append(scores)
                if fresh and one:
                    x, lam = nx, nlam
                    opt.adopt(nms, nvs)
        if into is not None:
            k = len(opt.m)
            x, lam, self._spare = into[0], into[1], now
            opt.adopt(into[2:2 + k], into[2 + k:])
        res, loss, bad = (torch.cat(t) if len(out) > 1 else t[0] for t in zip(*out))
        return res, loss, bad, x, lam

    def _next(self, now: list[torch.Tensor]) -> list[torch.Tensor]:
        """Buffers for the state after this iteration, shaped as `now`: the state before it (nothing reads it once
        the step has read `now`), made afresh only when the shape changes (successive halving, a new bracket)."""
        spare = self._spare
        if spare is None or any(a.shape != b.shape or a.dtype != b.dtype for a, b in zip(spare, now)):
            spare = [torch.empty_like(t) for t in now]
        return spare

    @torch.no_grad()
    def residuals(self, x, lam, alphas):
        """Relative residual per restart at full precision, no gradient."""
        return torch.cat([self.residual(x[sl], lam[sl], alphas) / self.theta_sq for sl in memory.chunks(len(x), self.chunk)])

    def residual(self, x, lam, alphas):
        """||theta - G||^2 per restart (not relative), no gradient."""
        return residual_forward(x, lam, self.ht, self.labels, self.form, alphas, self.gram)[0]

    def alpha_rows(self, schedule: torch.Tensor) -> list[torch.Tensor]:
        """The modified ReLU's slope per hidden layer at every iteration: the schedule (alpha per iteration, every
        restart alike) relative to each layer's RMS pre-activation (zscale); iteration `it` takes `row[it]` of each."""
        return [schedule / s for s in self.zscale]

    def full(self, x):
        """Candidates in input space (centred)."""
        return x @ self.basis.T if self.p.subspace != "off" else x

    def initial(self, R: int, gen) -> torch.Tensor:
        """Starting candidates (drawn on the CPU from the seeded generator, the same on every device)."""
        if self.start is not None:
            return self.start.clone()
        cpu = lambda t: None if t is None else t.cpu()  # noqa: E731
        x = init_candidates(self.p.init, cpu(self.ht_full.weights[0]), cpu(self.ht.weights[1]), cpu(self.labels),
                            self.form, R, self.p.init_scale * self.typ, cpu(self.basis), gen, cpu(self.victim.public))
        self.recombined = round(self.p.recombine * R) if len(self.pool) else 0
        for r in range(self.recombined):
            x[r] = self.pool.draw(x[r], cpu(self.labels), gen)
        return x.to(self.dev)

    def bracket(self, first_id: int, lr: torch.Tensor, gen, bar, t0):
        p, dt, dev, R = self.p, self.dt, self.dev, self.p.restarts
        self._spare = None  # next-state buffers live within a bracket
        x = self.initial(R, gen)
        if p.subspace != "off":
            x = x @ self.basis
        self.prior.project_(x)
        self.zscale = preact_rms(self.ht, x, self.chunk) if p.alpha_relative else [1.0] * (len(self.ht.weights) - 1)
        rows = self.alpha_rows(search.alpha_schedule(p.iterations, p.alpha_start, p.alpha_end, dt, dev))
        lmin = torch.full((R,), p.lambda_min, dtype=dt, device=dev)
        lam_scale = self._fit_scale(x, [r[0] for r in rows])
        lam = lam_scale.view(R, 1, *[1] * len(self.lam_dim)).expand(R, p.m, *self.lam_dim).clone()
        if self.form == "regression":
            lam = lam * 0.01 * torch.randn(lam.shape, generator=gen, dtype=dt).to(dev)
        ids = torch.arange(first_id, first_id + R)
        step = lr.to(dev, dt)
        opt = RestartOptimizer(p.optimizer, p.momentum, [x, lam], [step * self.typ, step * lam_scale.abs()], p.iterations)
        settings = {int(i): {"bracket": first_id // R, "lr": float(lr[k]), "alpha_start": p.alpha_start, "alpha_end": p.alpha_end,
                             "lambda_min": p.lambda_min, "init": "recombined" if k < self.recombined else _init_of(p.init, k),
                             "lambda_scale": float(lam_scale[k]),
                             "subspace_rank": None if self.basis is None else int(self.basis.shape[1]),
                             "optimizer": opt.optimizer_of(k), "device": str(dev), "restart_chunk": min(self.chunk, R),
                             "products": p.products}
                    for k, i in enumerate(ids)}
        curves = {int(i): [] for i in ids}
        status, its, finals, out = {}, {}, {}, []
        rungs = set(search.rung_iterations(p.iterations, p.rungs, p.eta))
        t_start = time.perf_counter()
        it = 0
        for it in range(p.iterations):
            alphas = [r[it] for r in rows]
            full = None  # successive halving prunes on full-precision residuals (of the x the step starts from)
            if p.products == "reduced" and (it + 1) in rungs:
                full = self.residuals(x, lam, alphas)
            res, loss, bad, x, lam = self.iterate(x, lam, lam_scale, lmin, alphas, opt)
            if full is not None:  # judged by the full-precision bound too
                res = full
                bad |= iteration.broken(full, precision.BROKEN_BELOW["full"])
            if it % p.curve_every == 0:
                for k, v in enumerate(loss.tolist()):
                    curves[int(ids[k])].append(v)
            keep = None
            if bad.any():
                for k in torch.nonzero(bad).flatten().tolist():
                    i = int(ids[k])
                    status[i], its[i], finals[i] = "diverged", it + 1, float("nan")
                keep = torch.nonzero(~bad).flatten()
            bar.update(1)
            timeout = p.time_budget_s and time.perf_counter() - t0 > p.time_budget_s
            if (it + 1) in rungs and not timeout:
                cand = keep if keep is not None else torch.arange(len(ids), device=dev)
                best = cand[search.survivors(res[cand], 1 / p.eta)]
                kept = set(best.tolist())
                for k in cand.tolist():
                    if k not in kept:
                        i = int(ids[k])
                        status[i], its[i], finals[i] = "pruned", it + 1, float(res[k])
                        if p.keep == "all":
                            out.append((self.full(x[k]).cpu(), lam[k].cpu(), i))
                keep = best.sort().values
            if keep is not None:
                x, lam, ids = x[keep], lam[keep], ids[keep.cpu()]
                lam_scale, lmin = lam_scale[keep], lmin[keep]
                opt.select(keep)
            if len(ids) == 0 or timeout:
                break
        bar.update(p.iterations - 1 - it)
        if len(ids):
            res = self.residuals(x, lam, [r[-1] for r in rows])
            gone = (iteration.broken(res, precision.BROKEN_BELOW["full"]) | ~torch.isfinite(x).flatten(1).all(1)).tolist()
            for k, i in enumerate(ids.tolist()):
                if gone[k]:
                    status[i], its[i], finals[i] = "diverged", it + 1, float("nan")
                    continue
                status[i], its[i], finals[i] = "ok", it + 1, float(res[k])
                out.append((self.full(x[k]).cpu(), lam[k].cpu(), i))
        wall = time.perf_counter() - t_start
        for s in settings.values():
            s["compiled"] = self.step_.compiled
        # an ok run ends before its iteration budget only when the opt-in time_budget_s cut it
        stop = {i: status[i] if status[i] != "ok" else "time_budget" if its[i] < p.iterations else "iterations" for i in settings}
        runs = [RunRecord(i, settings[i], status[i], its[i], finals[i], wall, curves[i], stop[i]) for i in sorted(settings)]
        return runs, out

    @torch.no_grad()
    def _fit_scale(self, x, alphas) -> torch.Tensor:
        """Per restart, the common lambda s minimising ||theta - s G(lambda=1)||^2 (from f(0), f(1), f(2))."""
        return torch.cat([self._fit_scale_chunk(x[sl], alphas) for sl in memory.chunks(len(x), self.chunk)])

    def _fit_scale_chunk(self, x, alphas) -> torch.Tensor:
        R = x.shape[0]
        one = torch.ones(R, self.p.m, *self.lam_dim, dtype=x.dtype, device=x.device)
        f0 = self.theta_sq
        f1 = self.residual(x, one, alphas)
        f2 = self.residual(x, 2 * one, alphas)
        bq = (f2 - 2 * f1 + f0) / 2
        aq = (f0 - f1 + bq) / 2
        s = (aq / bq.clamp_min(1e-30)).abs()
        return torch.where(torch.isfinite(s) & (s > 0), s, torch.ones_like(s))

