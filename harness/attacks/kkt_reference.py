"""`kkt-reference`: the straight published loop (Haim 2022), kept plain as the baseline.

One restart at a time; float64; the stationarity loss by double backward through the head with
the modified ReLU; SGD with momentum 0.9 on candidates and lambdas; each restart's lr, init
scale, lambda_min and alpha drawn from the published random-search ranges unless fixed.
"""

from __future__ import annotations

import random
import time

import torch
from pydantic import Field

from harness.attacks.base import Attack, AttackResult, RunRecord, Victim
from harness.attacks.common import KKTParams, check_victim, default_typical_norm, sample_setting
from harness.attacks.margins import balanced_labels, head_form, lambda_shape, margins
from harness.attacks.modified_relu import attack_activation
from harness.attacks.objective import layer_weight
from harness.attacks.penalties import lambda_penalty, prior_penalty, project_sphere_
from harness.progress import bar as progress_bar


class KKTReferenceParams(KKTParams):
    lr: float | None = Field(None, gt=0, description="fixed learning rate (else log-uniform [1e-5, 1])")
    init_scale: float | None = Field(None, gt=0, description="fixed candidate init std (else [1e-6, 0.1])")
    lambda_min: float | None = Field(None, gt=0, description="fixed lambda_min (else uniform [0.01, 0.5])")
    alpha: float | None = Field(None, gt=0, description="fixed modified-ReLU slope (else [10, 500])")
    momentum: float = Field(0.9, ge=0, lt=1)


def reference_kkt_loss(head, x, lam, labels, form, alpha, layer_weights=None) -> torch.Tensor:
    """sum_p ||p - grad_p sum_j lam_j Phi_j||^2 by double backward (x (m,d), lam (m,) or (m,C)); with
    `layer_weights`, each layer's parameters' terms times that layer's weight."""
    params = list(head.parameters())

    def outputs(fixed: bool):  # fixed: the weights as constants (the rivals' weights move with x, not with theta)
        a = x
        for k, layer in enumerate(head.layers):
            b = None if layer.bias is None else layer.bias.detach() if fixed else layer.bias
            z = torch.nn.functional.linear(a, layer.weight.detach() if fixed else layer.weight, b)
            a = attack_activation(head.activation, z, alpha) if k < len(head.layers) - 1 else z
        return a

    phi = margins(form, labels, outputs(False), outputs(True) if form == "multiclass" else None)
    grads = torch.autograd.grad((lam * phi).sum(), params, create_graph=True)
    weight = {id(p): layer_weight(layer_weights, k) for k, layer in enumerate(head.layers) for p in layer.parameters()}
    return sum(weight[id(p)] * ((p.detach() - g) ** 2).sum() for p, g in zip(params, grads))


class KKTReference(Attack):
    name = "kkt-reference"
    Params = KKTReferenceParams

    def reconstruct(self, victim: Victim, progress: bool = True, start: torch.Tensor | None = None) -> AttackResult:
        if start is not None:
            raise ValueError("kkt-reference keeps the published initialisation; start points are a kkt option")
        check_victim(victim)
        p: KKTReferenceParams = self.params
        t0 = time.perf_counter()
        head = _double_copy(victim.head)
        form = head_form(victim.loss, head.out_dim)
        frame = victim.frame.to(torch.float64)
        typ = default_typical_norm(victim)
        rng = random.Random(p.seed)
        gen = torch.Generator().manual_seed(p.seed)
        labels = balanced_labels(p.m, victim.num_classes)
        runs, cands, lams, ids = [], [], [], []
        for r in range(p.restarts):
            if r and p.time_budget_s and time.perf_counter() - t0 > p.time_budget_s:
                break  # the first restart always starts
            s = {k: sample_setting(rng, k, getattr(p, k)) for k in ("lr", "init_scale", "lambda_min", "alpha")}
            x = (torch.randn(p.m, victim.dim, generator=gen, dtype=torch.float64) * s["init_scale"]).requires_grad_()
            lam = torch.full(lambda_shape(form, p.m, head.out_dim), s["lambda_min"], dtype=torch.float64)
            lam.requires_grad_()
            opt = torch.optim.SGD([x, lam], lr=s["lr"], momentum=p.momentum)
            curve, status, it, t_run = [], "ok", 0, time.perf_counter()
            bar = progress_bar(range(p.iterations), desc=f"kkt-reference run {r}", disable=not progress, leave=False)
            for it in bar:
                loss = reference_kkt_loss(head, x, lam, labels, form, s["alpha"])
                loss = loss + lambda_penalty(lam.unsqueeze(0), s["lambda_min"], form)[0]
                loss = loss + p.prior_weight * prior_penalty(x.unsqueeze(0), victim.prior, frame, typ, victim.box)[0]
                if not torch.isfinite(loss):
                    status = "diverged"
                    break
                if it % p.curve_every == 0:
                    curve.append(loss.item())
                    bar.set_postfix(loss=f"{curve[-1]:.3e}", refresh=False)  # shown at the next refresh
                opt.zero_grad(set_to_none=True)
                gx, gl = torch.autograd.grad(loss, [x, lam])
                x.grad, lam.grad = gx, gl
                opt.step()
                if victim.prior == "sphere":
                    project_sphere_(x.data, frame)
                if p.time_budget_s and time.perf_counter() - t0 > p.time_budget_s:
                    break
            bar.close()
            final = float(loss.detach()) if status == "ok" else float("nan")
            # an ok run ends before its iteration budget only when the opt-in time_budget_s cut it
            stop = status if status != "ok" else "time_budget" if it + 1 < p.iterations else "iterations"
            runs.append(RunRecord(r, s, status, it + 1, final, time.perf_counter() - t_run, curve, stop))
            if status == "ok":
                cands.append(x.detach().float())
                lams.append(lam.detach().float())
                ids.append(torch.full((p.m,), r))
        return _result(victim, p, runs, cands, lams, ids, labels, t0)


def _double_copy(head):
    import copy

    h = copy.deepcopy(head).double()
    for q in h.parameters():
        q.requires_grad_(True)
    return h


def _result(victim, p, runs, cands, lams, ids, labels, t0) -> AttackResult:
    d = victim.dim
    if cands:
        X, Lm, I = torch.cat(cands), torch.cat(lams), torch.cat(ids)
        Y = labels.repeat(len(cands))
    else:
        X, Lm, I, Y = torch.empty(0, d), torch.empty(0), torch.empty(0, dtype=torch.long), torch.empty(0, dtype=torch.long)
    return AttackResult(X, Y, Lm, I, runs, p.model_dump(), wall_s=time.perf_counter() - t0)
