"""The attack's modified ReLU: forward value relu(z), backward sigmoid(alpha * z) (Haim 2022); tanh as is.

The true ReLU has no useful second derivative, so the stationarity loss would give candidates
no gradient through the activation pattern. The backward here is written in differentiable
torch ops, so double backward (kkt-reference) and the closed form (kkt) see the same function.
"""

from __future__ import annotations

import torch


class _ModifiedReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(z, alpha)
        return z.clamp_min(0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        z, alpha = ctx.saved_tensors
        return grad * torch.sigmoid(alpha * z), None


def modified_relu(z: torch.Tensor, alpha: float | torch.Tensor) -> torch.Tensor:
    """relu(z) whose derivative is sigmoid(alpha*z); `alpha` may broadcast (e.g. per restart)."""
    if not torch.is_tensor(alpha):
        alpha = torch.tensor(float(alpha), dtype=z.dtype, device=z.device)
    return _ModifiedReLU.apply(z, alpha.to(z.dtype))


def relu_slope(z: torch.Tensor, alpha: float | torch.Tensor) -> torch.Tensor:
    """The modified ReLU's derivative at z."""
    return torch.sigmoid(alpha * z)


def attack_activation(name: str, z: torch.Tensor, alpha) -> torch.Tensor:
    """A hidden layer's activation as the attacks see it: the modified ReLU, or tanh as it is (smooth
    already: its derivative 1 - tanh^2 needs no surrogate)."""
    return modified_relu(z, alpha) if name == "relu" else torch.tanh(z)


def attack_slope(name: str, z: torch.Tensor, alpha) -> torch.Tensor:
    """The derivative `attack_activation` backpropagates."""
    return relu_slope(z, alpha) if name == "relu" else 1 - torch.tanh(z) ** 2
