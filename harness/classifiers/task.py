"""What a task means when the harness trains no head: a classifier card's checkpoint, or a head given as a file."""

from __future__ import annotations

from harness.specs.task import TaskSpec
from harness.victims.spec import VictimSpec


def checkpoint_task(task: TaskSpec) -> TaskSpec:
    """The harness trains no head here: the loss is cross-entropy over the checkpoint's labels, the
    features are taken as the head receives them (no normalisation, no transform), and there is no
    null victim. The task's other head settings (widths, optimiser, ...) do not apply."""
    head = task.head.model_copy(update={"loss": "ce", "l2_normalize": False})
    return task.model_copy(update={"head": head, "null_victim": None, "victim": VictimSpec(trainer="given")})


def given_head_task(task: TaskSpec, transform: str | None = None, l2: bool | None = None) -> TaskSpec:
    """A head given as a file (`--head`): how it was trained is not known, so the task's trainer does not
    describe it and is not what decides the attack's `auto` settings (kkt's start: rows, as for every head
    not trained to stationarity by the `paper` recipe). The frame saved beside the head names the inputs'
    `transform` and whether they were L2-normalised (`l2`; an `l2` head was attacked on unnormalised embeddings, a
    frame saved from a normalising card on the raw embeddings of a card that does not); the task's names them where
    none is saved. No null victim is trained beside a given head, and the task says so."""
    spec = VictimSpec(transform=transform or task.victim.transform, trainer="given")
    head = task.head if l2 is None else task.head.model_copy(update={"l2_normalize": l2})
    return task.model_copy(update={"victim": spec, "null_victim": None, "head": head})
