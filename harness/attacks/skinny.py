"""Products of the residual's pass written so that torch.compile fuses what it can.

A one-output head (binary or regression) makes several of the pass's products skinny: matrix-vector and
vector-matrix products with the output layer's weights and the output adjoints. As GEMM calls each is a
separate pass over the (m, width) activations, and with reduced products (`products: reduced`) a CPU runs
them in bfloat16 at 3-4x their float32 time (converting the operands outweighs the work). Written as a
broadcast product and a sum, inductor folds them into the element-wise loops around them: 1.5x per
compiled pass with reduced products, 1.16x at full precision (384-1000-1 head, m = 1000, paired A/B runs,
docs/scale.md). Outer products stay GEMM calls: written element-wise, inductor recomputes them in every
loop that reads them (0.92x). Eager runs keep every GEMM call, the faster form there. `mm_t` forms
Delta^T A as (A^T Delta)^T, which a CPU's GEMM runs without copying the transposed (m, width) operand.
"""

from __future__ import annotations

import torch


def mm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a @ b; when compiling, a matrix-vector or vector-matrix product is written element-wise."""
    if torch.compiler.is_compiling():
        if b.shape[-1] == 1 and a.shape[-1] > 1:  # matrix-vector
            return (a * b.transpose(-1, -2)).sum(-1, keepdim=True)
        if a.shape[-2] == 1 and a.shape[-1] > 1:  # vector-matrix
            return (a.transpose(-1, -2) * b).sum(-2, keepdim=True)
    return a @ b


def mm_t(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a^T @ b over the last two dims (a and b share their second-to-last dimension)."""
    if a.shape[-1] == 1 or b.shape[-1] == 1:
        return mm(a.transpose(-1, -2), b)
    return (b.transpose(-1, -2) @ a).transpose(-1, -2)


def add_mm_(c: torch.Tensor, a: torch.Tensor, b: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """c + alpha a @ b: in place into c (baddbmm) when eager, through `mm` when compiling."""
    if torch.compiler.is_compiling():
        return c + alpha * mm(a, b)
    return c.baddbmm_(a, b, alpha=alpha)


def scaled_mm_sub(a: torch.Tensor, b: torch.Tensor, z: torch.Tensor, alpha: float) -> torch.Tensor:
    """alpha (a @ b - z), a fresh tensor: eager one baddbmm (z copied into the output); compiled a product
    whose subtraction fuses into the loops that read it, without the copy."""
    if torch.compiler.is_compiling():
        return alpha * (mm(a, b) - z)
    return torch.baddbmm(z, a, b, beta=-alpha, alpha=alpha)


def linear(a: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    """a @ w^T + b over a's last dimension: one addmm; through `mm` for a one-output layer when compiling."""
    if b is None or (w.shape[0] == 1 and torch.compiler.is_compiling()):
        z = mm(a, w.T)
        return z if b is None else z + b
    return torch.addmm(b, a.flatten(0, -2), w.T).view(*a.shape[:-1], w.shape[0])
