"""A unit of work (task x model card at a resolved revision) and its stable content-hash id."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from harness.attacks import attack_class, make_attack
from harness.attacks.kkt import check_layer_weights
from harness.attacks.priors import domain_prior
from harness.specs.model_card import ModelCard
from harness.specs.task import TaskSpec
from harness.specs.work import task_work
from harness.store.schemas import SCHEMA_VERSION


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
