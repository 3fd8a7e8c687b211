"""`kkt`: the stationarity attack of section 3, fast.

Same loss as `kkt-reference`, computed in closed form (objective.py) in float32 (its products optionally
reduced to bfloat16 / TF32: precision.py), for a population
of restarts stacked in one batched computation, each restart with its own lr / alpha /
lambda_min, optimised with Adam (per-restart step sizes), started from what the head's first
layer reveals (priors.py), optionally kept in W1's row space, and pruned by successive halving on
the loss alone (search.py). Everything that steers it is data-free: the KKT loss and the head.
It runs on CUDA when present (`device`), and a batch of restarts that would not fit in memory runs
in chunks of restarts that do (memory.py), with the same results up to float rounding.
"""

from __future__ import annotations

import logging
import time
from typing import Literal

import torch
from pydantic import Field, StrictBool, model_validator

from harness.attacks import fused, memory, precision, search
from harness.attacks.base import Attack, AttackResult, RunRecord, Victim
from harness.attacks.common import KKTParams, check_victim
from harness.attacks.kkt_context import Context
from harness.attacks.margins import head_form
from harness.attacks.objective import HeadTensors, search_layer_weights
from harness.attacks.priors import PUBLIC_INITS, ROW_SPACE_TOL, auto_init
from harness.errors import HarnessError
from harness.progress import bar as progress_bar
from harness.victims.spec import DEFAULT_TRAINER

log = logging.getLogger(__name__)


class KKTFastParams(KKTParams):
    optimizer: Literal["adam", "sgd", "mixed"] = Field(
        "adam", description="mixed: alternate restarts use sgd-momentum and adam (they find different basins)")
    lr: float | None = Field(None, gt=0, description="fixed step size (relative to the input norm)")
    lr_range: tuple[float, float] = Field((3e-3, 3e-2), description="log-uniform range when lr is unset")
    momentum: float = Field(0.9, ge=0, lt=1, description="sgd only")
    init: Literal["auto", "rows", "random", "subspace", "public", "mixed"] = Field(
        "auto", description="starting candidates: rows of W1 (oriented by class), Gaussian, Gaussian in W1's row space, "
        "public inputs (half of the task's non-members, in the victim's frame; the other half is the scored control), "
        "mixed (rows and public, alternate restarts), or auto (mixed for a box-prior pixel head of the paper trainer "
        "with public inputs, rows otherwise: priors.auto_init). Public starts rest near victim.public: score them on other inputs")
    init_scale: float = Field(1.0, gt=0, description="initial candidate norm / typical input norm")
    lambda_min: float = Field(0.05, gt=0, description="lambda_min relative to the fitted lambda scale")
    alpha_start: float = Field(20.0, gt=0, description="modified-ReLU slope sigmoid(alpha z) at the first iteration")
    alpha_end: float = Field(20.0, gt=0, description="the slope at the last iteration (annealed log-linearly)")
    alpha_relative: StrictBool = Field(True, description="alpha per layer / RMS pre-activation of the initial candidates")
    subspace: int | Literal["off", "auto"] = Field("auto", description="keep candidates in W1's row space")
    subspace_tol: float = Field(ROW_SPACE_TOL, gt=0, lt=1, description="'auto' keeps singular values >= tol * the largest")
    subspace_noise: StrictBool = Field(True, description="'auto' also keeps the singular values above the noise floor of W1's "
                                       "random part (Gavish-Donoho's threshold from their median), where that keeps more")
    rungs: int = Field(3, ge=0, le=20, description="successive-halving prunes per bracket")
    eta: int = Field(2, ge=2, description="keep 1/eta of the restarts at each rung")
    brackets: int = Field(1, ge=1, description="rounds of restarts; later rounds reuse good settings")
    dtype: Literal["float32", "float64"] = Field("float32", description="precision of the search")
    recombine: float = Field(
        0.5, ge=0, le=1, description="in brackets after the first, the share of restarts started from earlier restarts' "
        "candidates (recombine.py); 0: every restart from `init`. One bracket: no effect")
    polish: int = Field(
        6, ge=0, le=100, description="after the search, at most this many exact least-squares steps on the first layer over "
        "every restart's candidates together (polish.py; embedding heads of ReLU layers with a margin loss, binary or "
        "multiclass: pixel, tanh and regression heads are left as the search ends); 0: off")
    layer_weights: list[float] | None = Field(
        None, min_length=1, description="each layer's weight w_k in the searched residual sum_k w_k ||theta_k - G_k||^2, "
        "first layer first, one a layer of the head; unset: 1 each, and 0 on the layers between hidden layers of a head with "
        "two or more (the search cannot fit those layers' terms, even where the members do: search_layer_weights)")
    keep: Literal["survivors", "all"] = Field("survivors", description="candidates of pruned restarts too ('all'), or not")
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$", description="auto: the first CUDA device if present, else cpu")
    compile: fused.Compile = Field(
        "auto", description="fuse the pass's element-wise work with torch.compile: on, off, or auto (only where the "
        "run's planned products are worth the one-off compile: fused.py)")
    products: precision.Products = Field(
        "full", description="the search's float32 products at full precision, or reduced (bfloat16 operands on a CPU with "
        "AMX / AVX512-BF16, TF32 on CUDA: faster, noisier gradients; pruning and reported residuals stay full: precision.py)")
    memory_budget_gb: float | None = Field(
        None, gt=0, description="memory one batch of restarts may use (default: half the free RAM, 80% of free CUDA memory); "
        "restarts that do not fit run in chunks")

    @model_validator(mode="after")
    def _ranges(self):
        lo, hi = self.lr_range
        if not (0 < lo <= hi):
            raise ValueError(f"lr_range must satisfy 0 < lo <= hi, got {self.lr_range}")
        if isinstance(self.subspace, int) and self.subspace < 1:
            raise ValueError("subspace must be 'off', 'auto' or a rank >= 1")
        if self.layer_weights is not None and min(self.layer_weights) < 0:
            raise ValueError(f"layer_weights must be >= 0 each, got {self.layer_weights}")
        if self.products == "reduced" and self.dtype != "float32":
            raise ValueError("products 'reduced' rounds float32 products; with dtype float64 use products 'full'")
        return self


def check_layer_weights(weights: list[float] | None, layers: int, where: str | None = None) -> None:
    """A one-line error unless `weights` (kkt's `layer_weights`; None: the default) give one weight per layer of a
    head of `layers` layers and not all 0."""
    if weights is not None and (len(weights) != layers or not any(weights)):
        raise HarnessError("attack.params.layer_weights", weights, f"give one weight per layer of the head ({layers}), not all 0",
                           where)


class KKT(Attack):
    name = "kkt"
    Params = KKTFastParams

    @classmethod
    def resolve(cls, params: dict, prior: str, public: int, trainer: str = DEFAULT_TRAINER) -> dict:
        """`init: auto` decided for a victim with `prior`, `public` public inputs and `trainer`. A decision of rows stays
        implicit (auto gives it again), so the params, and the ids of planned units, of the heads whose start
        did not change stay as they were."""
        if params.get("init", "auto") != "auto":
            return params
        init = auto_init(prior, public, trainer)
        return {k: v for k, v in params.items() if k != "init"} if init == "rows" else {**params, "init": init}

    def reconstruct(self, victim: Victim, progress: bool = True, start: torch.Tensor | None = None) -> AttackResult:
        check_victim(victim)
        p: KKTFastParams = self.params
        if p.init == "auto":
            public = 0 if victim.public is None else len(victim.public)
            p = p.model_copy(update={"init": auto_init(victim.prior, public, victim.trainer)})
        if p.init in PUBLIC_INITS and start is None and (victim.public is None or not len(victim.public)):
            raise HarnessError("attack.params.init", p.init, "starting at public inputs needs the task's non-members "
                               "(none reached the attack); use init: rows")
        t0 = time.perf_counter()
        dt = torch.float32 if p.dtype == "float32" else torch.float64
        dev = memory.resolve_device(p.device)
        p = p.model_copy(update={"layer_weights": search_layer_weights(p.layer_weights, len(victim.head.layers))})
        check_layer_weights(p.layer_weights, len(victim.head.layers))
        ht = HeadTensors.of(victim.head, dt, dev, p.layer_weights)
        form = head_form(victim.loss, victim.head.out_dim)
        ctx = Context(p, victim, ht, form, dt, dev)
        if start is not None:
            if start.dim() != 3 or start.shape[0] != p.restarts or start.shape[1:] != (p.m, victim.dim):
                raise ValueError(f"start must be (restarts, m, d) = ({p.restarts}, {p.m}, {victim.dim}), got {tuple(start.shape)}")
            ctx.start = start.to(dev, dt)
        gen = torch.Generator().manual_seed(p.seed)
        runs: list[RunRecord] = []
        out: list[tuple] = []
        total_its = p.brackets * p.iterations
        bar = progress_bar(total=total_its, desc="kkt" + (f" (chunks of {ctx.chunk} restarts)" if ctx.chunk_note else ""),
                   disable=not progress, leave=False)
        if ctx.chunk_note:
            log.warning(ctx.chunk_note)
        if p.products == "reduced" and not precision.reduced_is_fast(dev):
            log.warning("kkt: products 'reduced': this CPU has neither AMX nor AVX512-BF16, so its bfloat16 products are "
                        "emulated and may be slower than 'full'")
        best_lr = None
        for b in range(p.brackets):
            if b and p.time_budget_s and time.perf_counter() - t0 > p.time_budget_s:
                break  # the first bracket always starts: a budget spent in the set-up still gets candidates
            lr = self._lrs(p, gen, best_lr)
            with ctx.step_.held():  # the compile settings once for the bracket's loop, not per iteration
                br_runs, br_out = ctx.bracket(len(runs), lr, gen, bar, t0)
            runs += br_runs
            out += br_out
            ok = [r for r in br_runs if r.status == "ok"]
            if p.recombine > 0:
                ok_ids = {r.run_id for r in ok}
                for xk, lk, i in (o for o in br_out if o[2] in ok_ids):
                    ctx.pool.add(xk, lk, ctx.labels.cpu())
            if ok:
                ok.sort(key=lambda r: r.final_loss)
                best_lr = torch.tensor([r.settings["lr"] for r in ok[: max(1, len(ok) // 2)]], dtype=torch.float64)
        bar.close()
        d = victim.dim
        if out:
            X = torch.cat([o[0] for o in out]).float()
            Lm = torch.cat([o[1] for o in out]).float()
            ids = torch.cat([torch.full((len(o[0]),), o[2]) for o in out])
            Y = torch.cat([ctx.labels.cpu() for _ in out])
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
