"""A victim recipe as a task names it: the input transform and the trainer (with its parameters)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

DEFAULT_TRAINER = "paper"  # a recipe that names no trainer: small init, weight decay, trained to stationarity


class VictimSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)  # .inf / .nan: refused, not trained on

    transform: str = Field("none", description="input transform published with the head: none | standardize | l2 | raw")
    trainer: str = Field(DEFAULT_TRAINER, description="how the head is trained: paper | sklearn-mlp | default-torch | linear | dp-sgd")
    params: dict[str, Any] = Field(default_factory=dict, description="the trainer's parameters (recon-harness ls trainers NAME)")

    @property
    def label(self) -> str:
        return f"{self.transform}+{self.trainer}"

    @model_validator(mode="after")
    def _known(self) -> "VictimSpec":
        """Names and parameters checked when the spec is read (so `validate` catches them), with the lists."""
        if self.trainer == "given":  # a head given as a file: no recipe to check
            return self
        from harness.errors import HarnessError
        from harness.specs.names import SpecFieldError
        from harness.victims.build import recipe_parts

        try:
            recipe_parts(self, check_available=False)
        except HarnessError as exc:  # loading.validation_error names it under the task's `victim`
            raise SpecFieldError(exc.field, exc.value, exc.fix) from None
        return self
