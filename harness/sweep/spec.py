"""A sweep spec (tasks/sweeps/*.yaml): which cards, which tasks, which grid, how to shard, what to ask of Ray."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from harness.specs.loading import parse, read_yaml
from harness.specs.names import SpecFieldError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)  # .inf / .nan: refused, not trained on


class CardTemplate(_Strict):
    """How to embed with a model found by a Hub query (the fields a model card would give)."""

    modality: Literal["image", "text"]
    pooling: Literal["cls", "mean", "pooler", "clip"] = "cls"
    normalize: StrictBool = False
    max_length: int = Field(128, ge=1, le=8192)


class HubQuery(_Strict):
    """`HfApi.list_models` arguments, top-k by `sort`; each hit is pinned to its current commit at plan time."""

    pipeline_tag: str | None = Field(None, description="e.g. feature-extraction, image-feature-extraction")
    library: str | None = Field(None, description="e.g. transformers, sentence-transformers")
    filter: list[str] = Field(default_factory=list, description="more Hub tags every model must carry")
    author: str | None = None
    search: str | None = None
    sort: Literal["downloads", "likes", "trending_score", "created_at", "last_modified"] = "downloads"
    top_k: int = Field(5, ge=1, le=1000)
    card: CardTemplate


class Request(_Strict):
    """Ray resources for one task (or the backbone actor); fractions pack several per GPU/CPU."""

    num_cpus: float = Field(1.0, ge=0)
    num_gpus: float = Field(0.0, ge=0)
    memory_gb: float | None = Field(None, gt=0, description="Ray memory reservation")

    def ray_options(self) -> dict[str, Any]:
        out: dict[str, Any] = {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus}
        if self.memory_gb:
            out["memory"] = int(self.memory_gb * 2**30)
        return out


class Resources(_Strict):
    # The actor reserves nothing by default: on CPUs it works only while units start; on GPUs give it num_gpus.
    embed: Request = Request(num_cpus=0)
    train: Request = Request()
    shard: Request = Request()
    finish: Request = Request()


class SweepSpec(_Strict):
    name: str = Field(description="sweep name (defaults to the file name)")
    description: str = ""
    out: str | None = Field(None, min_length=1, description="results directory (default: results/<name>); --out overrides")
    models: list[str] = Field(default_factory=list, description="card names, card files or Hub ids")
    hub: list[HubQuery] = Field(default_factory=list, description="Hub queries picking more models at plan time")
    tasks: list[str | dict[str, Any]] = Field(
        min_length=1, description="task names, task files, or inline tasks (a mapping with the task file's fields)"
    )
    match_modality: StrictBool = Field(True, description="pair a task only with cards of its own model's modality")
    grid: dict[str, list[Any]] = Field(
        default_factory=dict,
        description="task field (dotted: seed, per_class, head.widths, head.weight_decay, attack.params.m) -> values",
    )
    restarts_per_shard: int = Field(4, ge=1, description="attack restarts per shard (a shard is one Ray task)")
    resources: Resources = Resources()
    max_in_flight: int | None = Field(None, ge=1, description="Ray tasks in flight at once (default: 2 x CPU slots)")
    retries: int = Field(2, ge=0, le=20, description="Ray task retries / actor restarts after a worker dies")

    @model_validator(mode="after")
    def _some_models(self) -> "SweepSpec":
        if not self.models and not self.hub:
            raise ValueError("name at least one model card in `models` or a Hub query in `hub`")
        for key, values in self.grid.items():
            if not values:
                raise SpecFieldError(f"grid.{key}", values, "an empty list: give at least one value, or drop the key")
        return self


def load_sweep(path: str | Path) -> SweepSpec:
    path = Path(path)
    data = read_yaml(path)
    data.setdefault("name", path.stem)
    return parse(SweepSpec, data, str(path))
