"""The victim head: an MLP with ReLU (or tanh, as in BERT-style classifier heads), bias on the first
layer only by default."""

from __future__ import annotations

from typing import Literal, Sequence

import torch
from torch import nn

BiasMode = Literal["first", "all", "none"]
Activation = Literal["relu", "tanh"]
ACTIVATIONS = {"relu": torch.relu, "tanh": torch.tanh}


class MLPHead(nn.Module):
    """dims = [d, h1, ..., C]; the activation (ReLU by default) between layers, none on the output."""

    def __init__(self, dims: Sequence[int], bias: BiasMode = "first", activation: Activation = "relu"):
        super().__init__()
        if len(dims) < 2 or any(int(k) < 1 for k in dims):
            raise ValueError(f"head dims must be >= 2 positive ints, got {list(dims)}")
        self.dims = [int(k) for k in dims]
        self.bias_mode = bias
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        self.activation = activation
        self.layers = nn.ModuleList(
            nn.Linear(a, b, bias=(bias == "all" or (bias == "first" and i == 0)))
            for i, (a, b) in enumerate(zip(self.dims[:-1], self.dims[1:]))
        )

    @property
    def in_dim(self) -> int:
        return self.dims[0]

    @property
    def out_dim(self) -> int:
        return self.dims[-1]

    @torch.no_grad()
    def scale_init_(self, scale: float) -> "MLPHead":
        """Multiply the default (Kaiming-uniform) initialisation by `scale`."""
        for p in self.parameters():
            p.mul_(scale)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        act = ACTIVATIONS[self.activation]
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = act(x)
        return x

    def is_finite(self) -> bool:
        """No NaN or inf in any weight (a head whose training diverged has some)."""
        return all(bool(torch.isfinite(p).all()) for p in self.parameters())

    def flat_params(self) -> torch.Tensor:
        return torch.cat([p.detach().reshape(-1) for p in self.parameters()])

    def activation_patterns(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Boolean ReLU patterns of each hidden layer for inputs x (N, d); a tanh head has none."""
        if self.activation != "relu":
            raise ValueError("activation patterns are defined for ReLU heads only")
        out = []
        with torch.no_grad():
            for layer in self.layers[:-1]:
                x = layer(x)
                out.append(x > 0)
                x = torch.relu(x)
        return out
