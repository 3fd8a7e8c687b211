"""A task: which data, how many members, how the victim head is trained, how it is attacked."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, field_validator, model_validator

from harness.invert.recipe import EvidenceRecipe
from harness.victims.spec import VictimSpec
from harness.specs.names import SpecFieldError, check_name


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)  # .inf / .nan: refused, not trained on


class DataSpec(_Strict):
    source: str = Field(min_length=1, description="Hub dataset id, or a local Parquet/CSV file or imagefolder directory")
    format: Literal["hub", "parquet", "csv", "imagefolder"] = "parquet"
    revision: str | None = Field(None, description="Hub datasets: a pinned revision")
    split: str = Field("train", description="the split members are drawn from (for a checkpoint: the split it was trained on)")
    nonmember_split: str | None = Field(
        None, description="the split non-members are drawn from (one the head never saw); default: the members' split, "
        "disjoint rows. Needs a data set with splits: a Hub id, a directory of split-named Parquet files, an imagefolder",
    )
    input_column: str = Field(description="text or image column")
    label_column: str = "label"

    @model_validator(mode="after")
    def _revision_of_a_hub_set(self):
        if self.revision is not None and self.format != "hub":  # it was ignored: the file's content pins a local set
            raise ValueError(f"revision pins a Hub data set; a local {self.format} source is pinned by its content "
                             "(recorded as data_digest): drop data.revision")
        return self


MAX_WIDTH = 100_000  # a hidden layer's units (a wider one does not fit in memory: an internal error, not a refusal)


class HeadRecipe(_Strict):
    widths: list[StrictInt] = Field([1000], description="hidden layer widths; the input and output sizes follow")
    bias: Literal["first", "all", "none"] = "first"
    init_scale: float = Field(0.1, gt=0, le=10, description="multiplies the default initialisation")
    loss: Literal["logistic", "ce", "mse"] = "logistic"
    optimizer: Literal["gd", "adam", "lbfgs"] = "gd"
    lr: float = Field(0.05, gt=0)
    lr_schedule: Literal["constant", "cosine"] = Field(
        "constant", description="gd and adam: constant, or cosine (the step size falls from lr to 0 over max_steps)")
    weight_decay: float = Field(0.0, ge=0)
    max_steps: StrictInt = Field(20_000, ge=1)
    target_loss: float = Field(1e-4, gt=0)
    grad_tol: float = Field(1e-6, ge=0)
    plateau_steps: StrictInt = Field(0, ge=0, description="stop when the objective falls by < plateau_tol over this many steps (0: off)")
    plateau_tol: float = Field(1e-3, ge=0)
    l2_normalize: StrictBool | None = Field(None, description="L2-normalise embeddings; default: the model card's")

    @field_validator("widths")
    @classmethod
    def _widths(cls, v: list[int]) -> list[int]:
        if any(w < 1 or w > MAX_WIDTH for w in v):
            raise ValueError(f"every hidden width must be 1 to {MAX_WIDTH}, got {v}; use e.g. [1000]")
        return v


class AttackRecipe(_Strict):
    name: str = "kkt"
    params: dict[str, Any] = Field(default_factory=dict)


class TaskSpec(_Strict):
    name: str = Field(description="short registry name (defaults to the file name)")
    description: str = ""
    model: str = Field(description="model card name or file, or the Hub id a card names (overridable with --model)")
    data: DataSpec
    classes: list[str | StrictInt] = Field(min_length=2, description="class names (or indices) to use")
    per_class: StrictInt = Field(ge=1, le=100_000, description="members per class")
    nonmembers: StrictInt = Field(200, ge=1, description="held-out samples of the same classes: the control every score is "
                                  "measured against (1/fpr of them or more to resolve the reported false-positive rate)")
    seed: StrictInt = Field(0, ge=0, le=2**32 - 1, description="seeds the member draw and the head; the attack's starts have their own seed (attack.params.seed), so a grid over seed varies data and head, not the search")
    head: HeadRecipe = HeadRecipe()
    victim: VictimSpec = Field(default_factory=VictimSpec, description="victim recipe: input transform + trainer")
    attack: AttackRecipe = AttackRecipe()
    evidence: EvidenceRecipe = Field(default_factory=EvidenceRecipe, description="selection and inversion after the attack")
    fpr: float = Field(0.01, gt=0, lt=1, description="false-positive rate of the reported threshold")
    null_victim: Literal["disjoint", "shuffled", "untrained"] | None = Field(
        "disjoint",
        description="also attack a control head, scored against the same members: 'disjoint' = same recipe on "
        "shuffled labels of a disjoint draw of the same size (it never saw the members: the false-positive "
        "control); 'shuffled' = shuffled labels of the members themselves (a random-label victim: it "
        "memorises the members too, so it leaks them); 'untrained' = left at its initialisation; null/false: none",
    )

    @field_validator("name")
    @classmethod
    def _name_shape(cls, v: str) -> str:
        return check_name(v)

    @field_validator("null_victim", mode="before")
    @classmethod
    def _null_bool(cls, v):
        if isinstance(v, str) and v.lower() in ("none", "off", "no"):  # YAML reads these as text: say what turns it off
            raise ValueError(f"{v!r} is text here; write null_victim: false (or null) for no control, or one of "
                             "disjoint, shuffled, untrained")
        return {True: "disjoint", False: None}.get(v, v) if isinstance(v, bool) else v

    @field_validator("classes")
    @classmethod
    def _distinct(cls, v: list) -> list:
        seen = [str(c) for c in v]
        dup = sorted({c for c in seen if seen.count(c) > 1})
        if dup:
            raise ValueError(f"classes must be distinct; {', '.join(map(repr, dup))} appears more than once")
        return v

    @model_validator(mode="after")
    def _two_columns(self) -> "TaskSpec":
        if self.data.label_column == self.data.input_column:  # every member then "reconstructed" by its label's text
            raise SpecFieldError("data.label_column", self.data.label_column, "is the input column too; name the "
                                 "column that holds the classes")
        return self

    @model_validator(mode="after")
    def _schedule(self) -> "TaskSpec":
        if self.head.lr_schedule != "constant" and self.head.optimizer == "lbfgs":
            raise SpecFieldError(
                "head.lr_schedule", self.head.lr_schedule, "a learning-rate schedule needs optimizer gd or adam "
                "(lbfgs searches its own step): use lr_schedule: constant, or optimizer: adam",
            )
        return self

    @model_validator(mode="after")
    def _classes(self) -> "TaskSpec":
        """A task that states loss: logistic with other than 2 classes is refused as it is read. One that leaves
        the loss at its default is not: on a classifier card (and for `finetune`) the head is the checkpoint's,
        trained with cross-entropy, and the default does not apply; where the harness trains the head with it,
        `check_loss_fits_classes` refuses it (harness/data/split.py calls it before any draw)."""
        if "loss" in self.head.model_fields_set:
            check_loss_fits_classes(self)
        return self


def check_loss_fits_classes(task: TaskSpec, error: type = SpecFieldError) -> None:
    """The head the harness trains: the binary logistic loss needs exactly 2 classes (`error`: SpecFieldError
    while the task is validated, HarnessError once it is built)."""
    if task.head.loss == "logistic" and len(task.classes) != 2:
        raise error(
            "head.loss", "logistic", f"loss 'logistic' is binary but classes has {len(task.classes)}: "
            "use 2 classes, or head.loss: ce for more",
        )
