"""Products of the residual's pass written so that torch.compile fuses what it can.

A one-output head (binary or regression) makes several of the pass's products skinny: matrix-vector and
vector-matrix products with the output layer's weights and the output adjoints. As GEMM calls each is a
separate pass over the (m, width) activations, and with reduced products (`products: reduced`) a CPU runs
them in bfloat16 at 3-4x their float32 time (converting the operands outweighs the work). Written as a
broadcast product and a sum, inductor folds them into the element-wise loops around them: 1.5x per
compiled pass with reduced products, 1.16x at full precision (384-1000-1 head, m = 1000, paired A/B runs,
docs/scale.md). Outer products stay GEMM calls at full precision: written element-wise, inductor recomputes
them in every loop that reads them (0.92x); under reduced products they are written element-wise, where a
bfloat16 GEMM with one inner dimension costs a pass of its own. Eager runs keep every GEMM call, the faster
form there. `mm_t` forms Delta^T A as (A^T Delta)^T, which a CPU's GEMM runs without copying the transposed
(m, width) operand.

Under reduced products a compiled pass runs its GEMMs on bfloat16 operands with bfloat16 results (`gemm`,
`LOW`, set by precision.products), the casts fused into the loops that write the operands and read the
results; one restart goes through oneDNN's 2-d product (faster than its batched one at batch 1), and the
smaller operand of Delta^T A is laid out contiguously first (2x in bfloat16).
"""

from __future__ import annotations

import torch

LOW: torch.dtype | None = None  # compiled GEMM operands' dtype under reduced products (precision.products sets it)


def dot(a, b):
    """sum over the last two dims of a * b, per leading index. Eager: one vecdot pass, no temporary. Compiled:
    the product summed over both dims, which inductor fuses into the loop that makes a or b; a flattened vecdot
    there becomes one loop over m x width that gathers any broadcast operand (a bias, the frame's mean) by a
    modulo per element (at m = 40 on a 1000-wide layer 2x the fused loop's time, 50 us per restart-iteration)."""
    if torch.compiler.is_compiling():
        return (a * b).sum((-1, -2))
    return torch.linalg.vecdot(a.flatten(-2), b.flatten(-2))


def gemm(a: torch.Tensor, b: torch.Tensor, b_low: torch.Tensor | None = None) -> torch.Tensor:
    """a @ b as a GEMM call; compiled under reduced products, on LOW operands with a LOW result, the casts
    fused into the loops that write the operands and read the result (`b_low`: b already at LOW, for a
    weight cast once per run rather than at every pass)."""
    if LOW is not None and torch.compiler.is_compiling():
        bl = b_low if b_low is not None else b.to(LOW)
        if a.dim() == 3 and a.shape[0] == 1:  # one restart: oneDNN's 2-d product runs faster than its batched one
            return (a[0].to(LOW) @ (bl[0] if bl.dim() == 3 else bl)).to(a.dtype).unsqueeze(0)
        return (a.to(LOW) @ bl).to(a.dtype)
    return a @ b


def mm(a: torch.Tensor, b: torch.Tensor, b_low: torch.Tensor | None = None) -> torch.Tensor:
    """a @ b; when compiling, a matrix-vector or vector-matrix product is written element-wise (b_low: gemm's)."""
    if torch.compiler.is_compiling():
        if b.shape[-1] == 1 and a.shape[-1] > 1:  # matrix-vector
            return (a * b.transpose(-1, -2)).sum(-1, keepdim=True)
        if a.shape[-2] == 1 and a.shape[-1] > 1:  # vector-matrix
            return (a.transpose(-1, -2) * b).sum(-2, keepdim=True)
        if LOW is not None and a.shape[-1] == 1:  # outer product
            return a * b
    return gemm(a, b, b_low)


def mm_t(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a^T @ b over the last two dims (a and b share their second-to-last dimension)."""
    if a.shape[-1] == 1 or b.shape[-1] == 1:
        return mm(a.transpose(-1, -2), b)
    bt = b.transpose(-1, -2)
    if LOW is not None and torch.compiler.is_compiling() and b.numel() < a.numel():
        bt = bt.contiguous()  # the smaller operand laid out for the product: 2x faster in oneDNN's bfloat16 GEMM
    return gemm(bt, a).transpose(-1, -2)


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


def scaled_mm_add(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor | None, alpha: float) -> torch.Tensor:
    """alpha (a @ b + c), c broadcast over a's rows (or none), a fresh tensor: eager one baddbmm (or a bmm
    scaled in place), compiled a product whose scaling fuses into the loops that read it."""
    if torch.compiler.is_compiling():
        return alpha * (mm(a, b) if c is None else mm(a, b) + c)
    if c is None:
        return (a @ b).mul_(alpha)
    return torch.baddbmm(c.expand(*a.shape[:-1], b.shape[-1]), a, b, beta=alpha, alpha=alpha)


def linear(a: torch.Tensor, wt: torch.Tensor, b: torch.Tensor | None, wt_low: torch.Tensor | None = None) -> torch.Tensor:
    """a @ wt + b over a's last dimension, wt a layer's weight transposed (fan_in, width; contiguous: at small m a
    CPU's GEMM runs it 1.3-1.6x faster than the transposed view, objective.HeadTensors): one addmm when eager;
    through `mm` (and `gemm`, with wt_low) when compiling, the bias added in the loops that read the product."""
    if b is None or torch.compiler.is_compiling():
        z = mm(a, wt, wt_low)
        return z if b is None else z + b
    return torch.addmm(b, a.flatten(0, -2), wt).view(*a.shape[:-1], wt.shape[1])
