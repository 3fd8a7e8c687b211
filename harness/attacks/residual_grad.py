"""The closed-form KKT residual with its gradient in (x, lambda) written by hand.

objective.py defines the residual  ||theta||^2 - 2 sum_k <z_k, delta_k> + sum_k ||G_k||^2  (+ bias terms);
autograd through it records ~40 element-wise passes over the (m, width) activations per iteration,
which cost as much as the matrix products at large m. The reverse pass below is the same derivative
in about half the passes, with the products fused where torch allows (baddbmm; skinny.py for what
torch.compile can fold into its loops):

    backward signals     delta_{k-1} = p_{k-1} * s(z_{k-1}),  p_{k-1} = delta_k W_k
    their adjoints       gd_k = -2 z_k + 2 A_{k-1} G_k^T (+ 2 G_bk)  [+ what delta_{k-1} passes up]
                         (= 2 A_{k-1} E_k^T + 2 E_bk for an explicit G_k, E = G - theta: no cancellation)
                         gd_{k+1} += (gd_k * s_k) W_{k+1}^T;   gz_k = gd_k * p_k * s'(z_k) - 2 delta_k
    forward adjoints     (gz_L = -2 delta_L);  ga_{k-1} = gz_k W_k + 2 delta_k G_k;  gz_{k-1} += ga_{k-1} * s(z_{k-1})
                         (for an explicit G_k: (gz_k + 2 delta_k) W_k + 2 delta_k E_k, the same two products;
                         the output layer's ga_{L-1} = 2 delta_L E_L: one product)
    lambda               through delta_L = c(lambda) (margins.output_coef: linear in lambda)
    multiclass rivals    delta_L = lambda (onehot - q(z_L)):  gz_L += -lambda q (gd_L - <q, gd_L>)  (softmax's Jacobian)

where s is the derivative the attack backpropagates through the activation (the modified ReLU's
sigmoid(alpha z), tanh's 1 - tanh^2) and s' its derivative. Tests pin it to autograd and to the
double-backward reference (float64, every head form, bias mode and activation).
"""

from __future__ import annotations

import torch

from harness.attacks.margins import at_label, label_sign, output_coef, rival_weights
from harness.attacks.skinny import add_mm_, dot, mm, mm_t, scaled_mm_add, scaled_mm_sub


def residual_forward(x, lam, ht, labels, form, alphas, gram) -> tuple[torch.Tensor, tuple]:
    """The residual (R,) of candidates x (R, m, d) and lambdas (R, m[, C]), and what residual_backward needs.
    `alphas`: the modified ReLU's slope per hidden layer (floats or (R, 1, 1)); `gram`: per layer, whether
    ||G_k||^2 comes from the m x m Gram matrices (small m) or from G_k itself."""
    ws, bs = ht.weights, ht.biases
    L = len(ws)
    zs, acts, _ = ht.forward(x)
    slopes = [_slope(ht.activation, zs[k], acts[k + 1], alphas[k]) for k in range(L - 1)]
    c = output_coef(form, lam, labels, zs[-1])
    deltas, ps = [None] * L, [None] * (L - 1)
    deltas[-1] = c
    for k in range(L - 1, 0, -1):
        ps[k - 1] = mm(deltas[k], ws[k])
        deltas[k - 1] = ps[k - 1] * slopes[k - 1]
    # the layers whose term is ||theta_k - G_k||^2 itself leave ||theta_k||^2 out of the expanded form's constant
    explicit = [k for k in range(L) if not gram[k]]
    lw = ht.weight_of
    total = (ht.theta_sq - sum(lw(k) * ht.layer_sq[k] for k in explicit)).to(x).expand(x.shape[0]).clone()
    grams = []
    for k in range(L):
        if lw(k) == 0:  # a layer left out of the residual: no term, no products
            grams.append(None)
        elif gram[k]:
            total -= 2 * lw(k) * dot(zs[k], deltas[k])
            ga = acts[k] @ acts[k].transpose(-1, -2)
            if bs[k] is not None:
                ga += 1.0
            gd = deltas[k] @ deltas[k].transpose(-1, -2)
            total += lw(k) * dot(ga, gd)
            grams.append((ga, gd))
        else:  # E_k = G_k - W_k (and G_bk - b_k): the residual's own terms
            g = mm_t(deltas[k], acts[k])
            e = g - _laid_out_as(g, ws[k], ht.transposed[k])
            eb = deltas[k].sum(-2) - bs[k] if bs[k] is not None else None
            total += lw(k) * (e.pow(2).sum((-1, -2)) + (eb.pow(2).sum(-1) if eb is not None else 0))
            grams.append((g, e, eb))
    return total, (ht, labels, form, alphas, gram, acts, zs, slopes, deltas, ps, grams, lam)


def residual_backward(state: tuple, gout: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The gradients in (x, lambda) of sum_r gout_r * residual_r, from residual_forward's state."""
    ht, labels, form, alphas, gram, acts, zs, slopes, deltas, ps, grams, lam = state
    rival = None  # z_L's adjoint through the rivals' weights (multiclass)
    ws, L, lw = ht.weights, len(ht.weights), ht.weight_of
    gz: list[torch.Tensor | None] = [None] * L
    carry = None  # what delta_{k-1} passes up to delta_k
    for k in range(L):
        gd = None if grams[k] is None else _delta_adjoint(grams[k], gram[k], acts[k], zs[k], deltas[k], 2.0 * lw(k))
        if carry is not None:
            gd = carry if gd is None else gd.add_(carry)
        elif gd is None:  # a first layer left out of the residual
            gd = torch.zeros_like(deltas[k])
        if k < L - 1:
            gp = gd * slopes[k]
            carry = mm(gp, ws[k + 1].T)
            gz[k] = _z_adjoint(ht.activation, gd, gp, deltas[k], acts[k + 1], alphas[k], lw(k) if gram[k] else 0.0)
        else:
            glam, rival = _output_adjoints(form, gd, lam, labels, zs[-1])
    ga = None
    for k in range(L - 1, -1, -1):
        if gz[k] is None and not gram[k]:  # the output layer: -2 Delta W + 2 Delta G in one product
            ga = None if grams[k] is None else mm(deltas[k], 2 * lw(k) * grams[k][1])
            if rival is not None:
                ga = mm(rival, ws[k]) if ga is None else ga + mm(rival, ws[k])
            continue
        g = -2 * lw(k) * deltas[k] if gz[k] is None else gz[k]
        if gz[k] is None and rival is not None:
            g = g + rival
        if ga is not None:  # ga is the adjoint of acts[k + 1] = act(z_k)
            g.addcmul_(ga, slopes[k])
        ga = mm(g, ws[k], ht.low_weight(k))
        if grams[k] is None:  # left out of the residual
            pass
        elif gram[k]:  # 2 (Delta Delta^T) A
            ga = add_mm_(ga, grams[k][1], acts[k], alpha=2 * lw(k))
        else:  # 2 Delta E: g left out its -2 Delta, and -2 Delta W + 2 Delta G = 2 Delta E does not cancel
            ga = add_mm_(ga, deltas[k], grams[k][1], alpha=2 * lw(k))
    return ga.mul_(gout.view(-1, *[1] * (ga.dim() - 1))), glam.mul_(gout.view(-1, *[1] * (glam.dim() - 1)))


class ResidualSq(torch.autograd.Function):
    """residual_forward / residual_backward as an autograd function (first-order gradients only)."""

    @staticmethod
    def forward(ctx, x, lam, ht, labels, form, alphas, gram):
        total, ctx.state = residual_forward(x, lam, ht, labels, form, alphas, gram)
        return total

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gout):
        state, ctx.state = ctx.state, None
        return (*residual_backward(state, gout), None, None, None, None, None)


def _laid_out_as(g: torch.Tensor, w: torch.Tensor, wt: torch.Tensor) -> torch.Tensor:
    """The layer's weight W (held also as W^T laid out contiguously, `wt`) as a view in g's layout: mm_t returns
    G transposed, and G - W with its sum of squares then reads both operands in one order. Compiled, mixed
    layouts make inductor's loop over them scalar and strided (a 1000 x 188 layer: 6x the time of one order)."""
    return wt.transpose(-1, -2) if g.stride(-1) != 1 and g.stride(-2) == 1 else w


def _slope(name: str, z, a, alpha):
    """The derivative the attack backpropagates through the activation a = act(z): the modified ReLU's
    sigmoid(alpha z), tanh's 1 - tanh(z)^2."""
    return (z * alpha).sigmoid_() if name == "relu" else 1 - a * a


def _z_adjoint(name: str, gd, gp, delta, a, alpha, z_term: float = 1.0):
    """z_k's adjoint from delta_k = p_k s(z_k) and from -2 w <z_k, delta_k> (w: the layer's weight in the residual):
    gd p_k s'(z_k) - 2 w delta_k, written with s' = alpha s (1 - s) (modified ReLU) or -2 tanh(z) s (tanh) so that it
    reuses delta_k = p_k s and gp = gd s: delta_k (alpha (gd - gp) - 2 w), or -2 delta_k (tanh(z) gd + w). Overwrites
    gd. `z_term` is w; 0 leaves the -2 w delta_k out: an explicit-G layer adds it as part of 2 w Delta (G - W)."""
    if name == "relu":
        gd = gd.sub_(gp).mul_(alpha)
        return (gd.sub_(2 * z_term) if z_term else gd).mul_(delta)
    gd = gd.mul_(a)
    return (gd.add_(z_term) if z_term else gd).mul_(delta).mul_(-2)


def _delta_adjoint(saved, use_gram: bool, a, z, delta, two_w: float = 2.0):
    """d/d delta_k of  w (-2 <z_k, delta_k> + ||G_k||^2 (+ ||G_bk||^2)): 2w (A G_k^T - z_k) (+ 2w G_bk), which for an
    explicit G_k is written 2w (A E_k^T + E_bk) (E = G - theta: z_k = A W_k^T + b_k), so that it does not
    cancel near a minimum. `two_w`: 2w (w: the layer's weight in the residual, 1 by default)."""
    if use_gram:
        ga, _ = saved
        return scaled_mm_sub(ga, delta, z, two_w)
    _, e, eb = saved
    return scaled_mm_add(a, e.transpose(-1, -2), None if eb is None else eb.unsqueeze(-2), two_w)


def _output_adjoints(form, gd, lam, labels, out):
    """From delta_L's adjoint gd: lambda's (delta_L = output_coef(lambda), linear in lambda), and for a multiclass head
    the output's through the rivals' weights q(out) in delta_L = lambda (onehot - q): -lambda q (gd - <q, gd>)
    (None for the other forms)."""
    if form == "regression":
        return gd.sum_to_size(lam.shape), None
    if form == "binary":
        return gd[..., 0] * label_sign(labels, gd.dtype), None
    q = rival_weights(labels, out)
    rest = (q * gd).sum(-1, keepdim=True)  # <q, gd>
    return at_label(gd, labels) - rest.squeeze(-1), -lam.unsqueeze(-1) * q * (gd - rest)
