"""A unit of work (task x model card at a resolved revision), its stable content-hash id, and its plan: every setting
checked and every revision pinned before any work (`run` plans with plan_unit; a sweep with sweep/plan.py)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from harness.attacks import attack_class, make_attack
from harness.attacks.kkt import check_layer_weights
from harness.attacks.priors import domain_prior
from harness.backbones.resolve import ResolvedModel, resolve_model
from harness.classifiers.checkpoint import check_classes, is_integer_class, read_checkpoint
from harness.classifiers.task import checkpoint_task, given_head_task
from harness.data.source import data_digest, pin_hub_data
from harness.errors import HarnessError
from harness.provenance import content_digest
from harness.specs.model_card import ModelCard
from harness.specs.task import TaskSpec
from harness.specs.work import task_work
from harness.store.schemas import SCHEMA_VERSION
from harness.victims.build import recipe_parts

if TYPE_CHECKING:
    from harness.pipeline.stages import GivenHead


@dataclass(frozen=True)
class Unit:
    task: TaskSpec
    card: ModelCard
    revision: str  # resolved commit (or a label for non-Hub sources)
    head_file: str | None = None  # attack a given head instead of training one
    data_digest: str | None = None  # the local data's content (harness.data.source.data_digest)
    head_digest: str | None = None  # the given head file's content

    def settings(self) -> dict:
        """Everything the unit ran with, defaults included: the task states only the attack parameters it sets, so
        `attack_params` adds the attack's whole resolved parameter set (rows record it; the id hashes stated values)."""
        return {
            "task": self.task.model_dump(mode="json"),
            "attack_params": make_attack(self.task.attack.name, self.task.attack.params).params.model_dump(mode="json"),
            "card": self.card.model_dump(mode="json"),
            "revision": self.revision,
            "head_file": self.head_file,
            "data_digest": self.data_digest,
            "head_digest": self.head_digest,
        }

    @property
    def unit_id(self) -> str:
        """Same inputs, same id; any change to task, card, revision or head file gives a new one. Fields at their
        defaults stay out of the hash, so a release that adds a setting (whose default keeps today's behaviour)
        leaves existing units' ids, and a resumed store's finished work, as they were. The task's description is text
        about the work, not the work: editing it keeps the id. The contents of the local data and of a given head are
        hashed too: a file changed in place is new work, and one file reached by two paths (relative from two folders,
        or absolute) is one unit, named by its content. Of the evidence settings only selection's count (`task_work`, the
        rule the store's retiring and the leaderboard's settings share): a run with other inversion settings replaces the
        unit's rows."""
        task = task_work(self.task.model_dump(mode="json", exclude_defaults=True))
        if self.data_digest:  # local data: its content names it, not the path it was reached by
            task["data"].pop("source", None)
        stated = {"task": task, "card": self.card.model_dump(mode="json", exclude_defaults=True),
                  "revision": self.revision, "head_file": None if self.head_digest else self.head_file}
        stated |= {k: v for k, v in (("data_digest", self.data_digest), ("head_digest", self.head_digest)) if v}
        blob = json.dumps({**stated, "schema": SCHEMA_VERSION}, sort_keys=True, default=str)
        return f"{self.task.name}-{self.card.name}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}".replace("/", "_")


def check_trained_head(task: TaskSpec, where: str | None = None) -> None:
    """The attack's settings that depend on the shape of a head the unit trains (the task's hidden layers and an
    output), checked before any work: `run`'s plan and a sweep's plan alike."""
    if task.attack.name == "kkt":
        check_layer_weights(task.attack.params.get("layer_weights"), len(task.head.widths) + 1, where)


def resolve_attack(task: TaskSpec, card: ModelCard) -> TaskSpec:
    """`task` with its attack's settings left to 'auto' decided for `card` (the `identity` backbone's pixels take the
    box prior; the task's non-members are the public inputs; its victim recipe names the trainer), once, before
    any work: the unit's id and settings record the decision, and its local run, Ray shards, merge and a resumed
    run all take the same one."""
    params = attack_class(task.attack.name).resolve(task.attack.params, domain_prior(card.is_identity), task.nonmembers,
                                                    task.victim.trainer)
    if params == task.attack.params:
        return task
    return task.model_copy(update={"attack": task.attack.model_copy(update={"params": params})})


def plan_unit(task: TaskSpec, card: ModelCard, head_file: str | None = None, base_dir: Path | None = None,
              given: GivenHead | None = None) -> tuple[Unit, ResolvedModel]:
    """Check the attack's parameters and the victim recipe, and resolve the card's revision, before any work;
    a classifier card's config (architecture, labels) is checked against the task too. `base_dir`: where the
    task's relative data path starts; `given`: the head loaded from `head_file` (its saved frame names the inputs')."""
    make_attack(task.attack.name, task.attack.params)
    recipe_parts(task.victim)
    task = task.model_copy(update={"data": pin_hub_data(task.data)})
    resolved = resolve_model(card)
    if card.is_classifier:
        if head_file:
            raise HarnessError("--head", head_file, f"{card.name} is a classifier card: its own head is attacked; drop --head")
        if not any(is_integer_class(c) for c in task.classes):  # integers are label values: checked with the data's
            check_classes(read_checkpoint(card.id, resolved.path), task.classes)  # names (checkpoint_stage)
        task = checkpoint_task(task)
    elif head_file:
        task = given_head_task(task, given.frame.transform if given is not None and given.frame is not None else None,
                               given.l2 if given is not None else None)
    else:  # a head trained here
        check_trained_head(task)
    head_digest = content_digest(head_file) if head_file and Path(head_file).is_file() else None
    return Unit(resolve_attack(task, card), card, resolved.revision, head_file, data_digest(task.data, base_dir),
                head_digest), resolved
