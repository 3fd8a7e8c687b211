"""The KKT loss of section 3 in closed form for MLP heads, batched over restarts.

For an MLP the sum  G = sum_j grad_theta (c_j . h(x_j))  is, layer by layer, G_k = Delta_k^T A_{k-1}
(backprop signals times inputs, with the modified ReLU's slope), plus G_bk = sum_j delta_kj for a
biased layer. Where m is small, a layer's term of ||theta - G||^2 comes from two m x m Gram matrices:
  ||theta_k||^2 - 2 (<W_k, G_k> + <b_k, G_bk>) + ||G_k||^2 + ||G_bk||^2,  with
  <W_k, G_k> + <b_k, G_bk> = sum_j delta_kj . z_kj          (z = pre-activation, already computed)
  ||G_k||^2 + ||G_bk||^2  = sum_ij (delta_i.delta_j)(a_i.a_j + [bias])
No per-sample gradient, no double backward, no h x h matrix per candidate: one forward, one
backward signal, and a reverse pass written by hand for the gradient in (x, lambda) (residual_grad.py). Where m is large
(m (h + d) > h d) the Gram matrices cost more than G_k itself, and G_k is formed instead: the cost
then grows linearly in m, and the term is ||W_k - G_k||^2 + ||b_k - G_bk||^2 itself, which does not
cancel near a minimum as the expanded form does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from harness.attacks.margins import Form
from harness.attacks.residual_grad import ResidualSq
from harness.attacks.skinny import linear
from harness.heads.mlp import MLPHead


@dataclass
class HeadTensors:
    """A head's weights detached into plain tensors (one dtype/device), and ||theta||^2 (by default the sum
    of the layers', each times its weight in the residual; kkt's row-space coordinates keep the full head's)."""

    weights: list[torch.Tensor]
    biases: list[torch.Tensor | None]
    theta_sq: torch.Tensor | None = None
    activation: str = "relu"
    # each layer's weight w_k in the residual sum_k w_k ||theta_k - G_k||^2 (None: 1 each, the KKT residual itself)
    layer_weights: tuple[float, ...] | None = None
    low: list[torch.Tensor] | None = None  # the weights cast once to skinny.LOW, for compiled reduced passes
    # (L,) float64: ||W_k||^2 + ||b_k||^2 of the weights as held here (a tensor: a compiled pass takes it as an
    # input, where floats would be constants that a new head's values recompile)
    layer_sq: torch.Tensor = field(init=False)
    # the weights transposed and laid out contiguously, for the forward products x @ W^T (skinny.linear)
    transposed: list[torch.Tensor] = field(init=False)

    def __post_init__(self):
        self.transposed = [w.T.contiguous() for w in self.weights]
        self.layer_sq = torch.tensor([float(w.double().pow(2).sum()) + (0.0 if b is None else float(b.double().pow(2).sum()))
                                      for w, b in zip(self.weights, self.biases)], dtype=torch.float64,
                                     device=self.weights[0].device)  # beside the weights: no copy per pass on a GPU
        if self.theta_sq is None:
            self.theta_sq = self.layer_sq.sum() if self.layer_weights is None else (
                self.layer_sq.new_tensor(self.layer_weights) * self.layer_sq).sum()

    def weight_of(self, k: int) -> float:
        """Layer k's weight in the residual (1 unless `layer_weights` says otherwise)."""
        return layer_weight(self.layer_weights, k)

    @classmethod
    def of(cls, head: MLPHead, dtype=torch.float32, device="cpu", layer_weights=None) -> "HeadTensors":
        ws = [l.weight.detach().to(device, dtype) for l in head.layers]
        bs = [None if l.bias is None else l.bias.detach().to(device, dtype) for l in head.layers]
        return cls(ws, bs, activation=head.activation, layer_weights=None if layer_weights is None else tuple(layer_weights))

    def with_low(self, dtype: torch.dtype) -> "HeadTensors":
        """These weights, with copies cast to `dtype` for the GEMMs of compiled reduced passes (skinny.gemm)."""
        self.low = [w.to(dtype) for w in self.weights]
        return self

    def low_weight(self, k: int) -> torch.Tensor | None:
        return None if self.low is None else self.low[k]

    def forward(self, x: torch.Tensor) -> tuple[list, list, torch.Tensor]:
        """Pre-activations z_k and inputs a_k of every layer, and the output (the modified ReLU's value is
        the ReLU's: its slope only changes what the attack backpropagates, residual_grad.py)."""
        zs, acts = [], [x]
        L = len(self.weights)
        for k, b in enumerate(self.biases):
            low = self.low_weight(k)
            z = linear(acts[k], self.transposed[k], b, None if low is None else low.T)
            zs.append(z)
            if k < L - 1:
                acts.append(z.clamp_min(0) if self.activation == "relu" else torch.tanh(z))
        return zs, acts, zs[-1]


def layer_weight(weights, k: int) -> float:
    """Layer k's weight in a residual weighted by `weights` (kkt's `layer_weights`; None: 1 each)."""
    return 1.0 if weights is None else float(weights[k])


def search_layer_weights(stated, layers: int) -> list[float] | None:
    """The layer weights a search of a head of `layers` layers uses: `stated` (kkt's `layer_weights`) where set, else
    None (1 each) up to one hidden layer and, with two or more, 0 on the layers between hidden layers. The search
    spends itself on those layers' terms: on MiniLM heads 384-1000-1000-1 stopped short of stationarity the members'
    fit leaves 2-8% of the middle layer's squared norm (the training's unfinished part), which the search fitted with
    inputs that are not members, their first layers 30-50x worse than the members'; and on heads trained to
    stationarity, which the members fit to 1e-6, the search with every term still ends at 0.01-0.08 and finds fewer
    members (docs/attack.md, "Deeper heads: the middle layers' weight"). The forward pass and the backprop signals still
    go through them."""
    if stated is not None or layers <= 2:
        return stated
    return [1.0] + [0.0] * (layers - 2) + [1.0]


def residual_sq(
    ht: HeadTensors,
    x: torch.Tensor,
    lam: torch.Tensor,
    labels: torch.Tensor,
    form: Form,
    alpha,
    gram: bool | None = None,
) -> torch.Tensor:
    """||theta - sum_j lam_j grad Phi_j||^2 for x (R, m, d), lam (R, m[, C]); returns (R,), differentiable
    in x and lam (the reverse pass is written by hand: residual_grad.py).

    `alpha` is a float or a tensor broadcastable to (R, 1, 1) (one slope per restart), or a list
    of those, one per hidden layer. `gram` forces how each layer's ||G_k||^2 is computed (None:
    the cheaper, see gram_is_cheaper).
    """
    return ResidualSq.apply(x, lam, ht, labels, form, layer_alphas(ht, alpha), gram_flags(ht, x.shape[-2], gram))


def layer_alphas(ht: HeadTensors, alpha) -> list:
    """The modified ReLU's slope per hidden layer, from one value or a list of them."""
    return [_layer(alpha, k) for k in range(len(ht.weights) - 1)]


def gram_flags(ht: HeadTensors, m: int, gram: bool | None = None) -> list[bool]:
    """Per layer, whether ||G_k||^2 is computed from the m x m Gram matrices (None: where cheaper)."""
    return [gram_is_cheaper(m, w.shape[0], w.shape[1]) if gram is None else gram for w in ht.weights]


def gram_is_cheaper(m: int, width: int, fan_in: int) -> bool:
    """||G_k||^2 through the two m x m Gram matrices costs ~ m^2 (width + fan_in) multiply-adds; forming
    G_k = Delta_k^T A_{k-1} (width x fan_in) costs ~ m width fan_in. Gram wins while m is small; the
    explicit G keeps the cost linear in m (m > 500 on a 1000-wide layer over 1000 inputs)."""
    return m * (width + fan_in) < width * fan_in


def _layer(alpha, k: int):
    return alpha[k] if isinstance(alpha, (list, tuple)) else alpha


@torch.no_grad()
def preact_rms(ht: HeadTensors, x: torch.Tensor, chunk: int | None = None) -> list[float]:
    """RMS pre-activation of each hidden layer for inputs x (R, m, d): the scale a relative alpha
    divides by; computed `chunk` restarts at a time (the same value up to rounding)."""
    sq, count = [0.0] * (len(ht.weights) - 1), 0
    for s in range(0, len(x), chunk or len(x)):
        zs, _, _ = ht.forward(x[s : s + (chunk or len(x))])
        sq = [a + float(z.double().pow(2).sum()) for a, z in zip(sq, zs[:-1])]
        count += zs[0].shape[:-1].numel()
    return [max((a / count / w.shape[0]) ** 0.5, 1e-12) for a, w in zip(sq, ht.weights[:-1])]
