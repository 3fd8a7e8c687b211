"""`kkt`'s `products` setting: the search's float32 matrix products at full precision, or reduced.

`reduced` lets the BLAS run the float32 products of each search iteration on bfloat16 operands with
float32 accumulation and float32 results (oneDNN on a CPU, fast where the CPU has AMX tiles or
AVX512-BF16; on CUDA, TF32 tensor cores). Tensors stay
float32; only the products round their operands (about 2^-8 relative). A compiled pass on a CPU casts
the GEMM operands to bfloat16 itself and takes a bfloat16 result (skinny.gemm): the casts fuse into the
loops that write the operands and read the results, where oneDNN would convert each float32 operand in
a pass of its own, and the (m, width) arrays cross memory at half the bytes (1.3x per compiled pass at
m = 1000, docs/scale.md). The results then round too (2^-8), at about the operands' cost in accuracy.

What it costs in accuracy (measured on a 3072-1000-1 pixel head, m = 200, docs/scale.md): near a minimum
(relative residuals 0.04-0.1 after 1500 iterations) the reduced pass's residual is off by about 0.1%
(1.3% while explicit-G layers used the expanded closed form, whose terms are each about ||theta||^2) and
its gradient in x by ~15% (relative norm: the gradient is a small sum of large terms there); the search
steps on that noisy gradient. So the search's decisions are taken at full precision: successive halving prunes on
full-precision residuals, and every residual a run reports, and the lambda fit at the start, is
computed at full precision. A run records `products` in its settings.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Literal

import torch

from harness.attacks import skinny

Products = Literal["full", "reduced"]
BROKEN_BELOW = {"full": -1e-3, "reduced": -0.05}  # a relative residual below this is a run's rounding blow-up


@contextmanager
def products(mode: Products, device: torch.device) -> Iterator[None]:
    """Run the float32 products inside at `mode`'s precision on `device` (restored on exit). Through
    torch's float32 matmul precision (in torch since 1.12): 'medium' lets oneDNN use bfloat16 on a CPU,
    'high' lets CUDA use TF32."""
    if mode == "full":
        yield
        return
    before, low = torch.get_float32_matmul_precision(), skinny.LOW
    torch.set_float32_matmul_precision("high" if device.type == "cuda" else "medium")
    if device.type == "cpu":
        skinny.LOW = torch.bfloat16  # a compiled pass casts its GEMM operands itself (skinny.gemm)
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(before)
        skinny.LOW = low


def reduced_is_fast(device: torch.device) -> bool:
    """Whether `reduced` products have hardware behind them here (AMX or AVX512-BF16 on a CPU; any CUDA
    device has TF32 from Ampere on, and older ones ignore the setting)."""
    if device.type == "cuda":
        return True
    cpu = torch.cpu
    return any(getattr(cpu, name, lambda: False)() for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"))
