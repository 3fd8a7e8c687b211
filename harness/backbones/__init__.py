"""Backbones: resolve a model card to weights on disk, load it, embed inputs (cached)."""

from harness.backbones.resolve import ResolvedModel, resolve_model
from harness.backbones.load import Backbone, load_backbone

__all__ = ["ResolvedModel", "resolve_model", "Backbone", "load_backbone"]
