"""What a task means on a classifier card: the checkpoint's own head is attacked as it is."""

from __future__ import annotations

from harness.specs.task import TaskSpec
from harness.victims.spec import VictimSpec


def checkpoint_task(task: TaskSpec) -> TaskSpec:
    """The harness trains no head here: the loss is cross-entropy over the checkpoint's labels, the
    features are taken as the head receives them (no normalisation, no transform), and there is no
    null victim. The task's other head settings (widths, optimiser, ...) do not apply."""
    head = task.head.model_copy(update={"loss": "ce", "l2_normalize": False})
    return task.model_copy(update={"head": head, "null_victim": None, "victim": VictimSpec(trainer="given")})
