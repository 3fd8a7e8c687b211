"""Declarative specs: model cards (models/*.yaml) and tasks (tasks/*.yaml), validated by pydantic."""

from harness.specs.model_card import ModelCard
from harness.specs.task import AttackRecipe, DataSpec, HeadRecipe, TaskSpec

__all__ = ["ModelCard", "TaskSpec", "DataSpec", "HeadRecipe", "AttackRecipe"]
