"""A model card: which backbone, at which revision, embedded how."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, field_validator, model_validator

from harness.specs.names import SpecFieldError, check_name

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[\w.\-]+)?$")


class ModelCard(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)  # .inf / .nan: refused, not trained on

    name: str = Field(description="short registry name, e.g. all-minilm-l6-v2 (defaults to the file name)")
    id: str = Field(description="Hugging Face Hub id, a local directory, or 'identity' for raw pixels")
    kind: Literal["backbone", "classifier"] = Field(
        "backbone",
        description="backbone: the harness trains a victim head on its embeddings; classifier: a fine-tuned "
        "*ForSequenceClassification / *ForImageClassification checkpoint whose own head is attacked",
    )
    revision: str = Field(
        "main", description="a 40-hex commit (pinned), or a branch/tag resolved to its commit before any work"
    )
    modality: Literal["image", "text"]
    pooling: Literal["cls", "mean", "pooler", "clip", "flatten"] = "cls"
    normalize: StrictBool = False
    licence: str = "unknown"
    trust_remote_code: StrictBool = False
    use_safetensors: StrictBool = True
    max_length: StrictInt = Field(128, ge=1, le=8192, description="text: tokens per input, at most what the model takes (longer texts are cut)")
    local_package: str | None = Field(
        None,
        description="Python package with get_model_path() carrying these weights, used when the Hub cache lacks them",
    )
    dim: StrictInt | None = Field(None, ge=1, description="embedding size, when known without loading")

    @field_validator("name")
    @classmethod
    def _name_shape(cls, v: str) -> str:
        return check_name(v)

    @field_validator("id")
    @classmethod
    def _id_shape(cls, v: str) -> str:
        if v == "identity" or v.startswith(("/", ".")) or HUB_ID.match(v):
            return v
        raise ValueError("must be a Hub id like 'org/name', a local path, or 'identity'")

    @model_validator(mode="after")
    def _consistent(self) -> "ModelCard":
        if self.id == "identity":
            if self.kind == "classifier":
                raise SpecFieldError("kind", self.kind, "the identity backbone is not a classifier checkpoint; use kind: backbone")
            if self.modality != "image" or self.pooling != "flatten":
                field, value = ("modality", self.modality) if self.modality != "image" else ("pooling", self.pooling)
                raise SpecFieldError(field, value, "the identity backbone needs modality: image and pooling: flatten")
        elif self.kind == "classifier" and self.normalize:
            raise SpecFieldError("normalize", True, "a classifier's head takes its features as they are: drop normalize")
        elif self.pooling == "flatten":
            raise SpecFieldError("pooling", self.pooling, "pooling 'flatten' is for the identity backbone only")
        return self

    @property
    def is_local(self) -> bool:
        """A local directory (no Hub revision to pin), written as a path starting with / or ."""
        return self.id.startswith(("/", "."))

    @property
    def is_classifier(self) -> bool:
        return self.kind == "classifier"

    @property
    def is_identity(self) -> bool:
        return self.id == "identity"

    @property
    def pinned(self) -> bool:
        return bool(re.fullmatch(r"[0-9a-f]{40}", self.revision))
