"""A victim recipe as a task names it: the input transform and the trainer (with its parameters)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class VictimSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    transform: str = Field("none", description="input transform published with the head: none | standardize | l2")
    trainer: str = Field("paper", description="how the head is trained: paper | sklearn-mlp | default-torch | linear | dp-sgd")
    params: dict[str, Any] = Field(default_factory=dict, description="the trainer's parameters (recon-harness ls trainers NAME)")

    @property
    def label(self) -> str:
        return f"{self.transform}+{self.trainer}"
