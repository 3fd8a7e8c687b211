"""Victim heads: the small MLPs trained on frozen-backbone embeddings."""

from harness.heads.mlp import MLPHead

__all__ = ["MLPHead"]
