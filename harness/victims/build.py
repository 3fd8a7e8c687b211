"""The one way a victim is built (run, sweep, bench and tests): fit the recipe's input transform on the
training rows, train the head with the recipe's trainer, and measure how stationary it is.

The null victims (controls) are built here too: 'disjoint' trains the same recipe on shuffled labels
of a disjoint draw (its own transform, fitted on that draw), 'shuffled' on shuffled labels of the
members, 'untrained' leaves the head at its initialisation.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import torch

from harness.attacks.base import Victim
from harness.diagnostics.oracle import effective_members, oracle_fit, stationarity_bound
from harness.diagnostics.patterns import members_with_own_pattern
from harness.diagnostics.row_space import members_in_row_space
from harness.errors import HarnessError, did_you_mean
from harness.heads.mlp import MLPHead
from harness.heads.train import TrainReport, accuracy
from harness.params import validated_params
from harness.specs.task import HeadRecipe
from harness.victims.frame import Frame
from harness.victims.spec import VictimSpec
from harness.victims.trainers import TRAINERS
from harness.victims.trainers.base import Trainer
from harness.victims.trainers.paper import Paper
from harness.victims.transforms import TRANSFORMS, Transform

NULL_MODES = ("disjoint", "shuffled", "untrained")


class TrainingDiverged(HarnessError):
    """A victim whose training stopped at a non-finite objective or weights; `field` names the step size to lower."""


@dataclass
class VictimData:
    """Embeddings (L2-normalised when the frame is on the sphere, not yet centred) and labels."""

    members: torch.Tensor
    labels: torch.Tensor
    num_classes: int
    public: torch.Tensor  # non-members: public rows of the same distribution (test accuracy, validation)
    public_labels: torch.Tensor
    null: torch.Tensor | None = None  # the disjoint null victim's training draw
    null_labels: torch.Tensor | None = None
    l2: bool = False


@dataclass
class TrainedVictim:
    kind: str  # "real" or "null"
    head: MLPHead
    frame: Frame  # the transform published with the head: what maps embeddings to its inputs
    labels: torch.Tensor  # the labels the head was trained on
    report: TrainReport | None  # None for a head given as a file
    test_acc: float
    oracle_residual: float
    recipe: VictimSpec = field(default_factory=VictimSpec)
    info: dict[str, Any] = field(default_factory=dict)  # the trainer's record (e.g. epsilon reached)
    active_share: float | None = None  # mean share of first-layer units active on a training row
    effective_members: float | None = None  # how many members θ carries (participation ratio of the oracle fit's parts)
    in_row_space: int | None = None  # members a search in W1's row space can reach at cosine > 0.8 (diagnostics/row_space.py)
    own_pattern: int | None = None  # members whose activation pattern no other member shares (diagnostics/patterns.py)
    train_acc: float | None = None  # a given head's accuracy on the task's members (a trained one's is in its report)

    @property
    def linear(self) -> bool:
        return len(self.head.layers) == 1

    @property
    def stationarity_bound(self) -> float | None:
        """The bound the training's own multipliers put on the oracle residual (diagnostics/oracle.py)."""
        return stationarity_bound(self.head, self.report)


def shuffled_labels(labels: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """The seeded shuffle of the labels that the 'shuffled' and 'disjoint' null victims are trained on."""
    return labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed + 1))]


def recipe_parts(spec: VictimSpec, check_available: bool = True) -> tuple[Transform, Trainer]:
    """The recipe's transform and trainer, checked: unknown names and bad parameters are one-line errors;
    `check_available` also asks the trainer whether it can run here (an optional package)."""
    if spec.transform not in TRANSFORMS:
        raise HarnessError("victim.transform", spec.transform,
                           f"unknown transform{did_you_mean(spec.transform, TRANSFORMS)}; known: {', '.join(TRANSFORMS)}")
    if spec.trainer not in TRAINERS:
        raise HarnessError("victim.trainer", spec.trainer,
                           f"unknown trainer{did_you_mean(spec.trainer, TRAINERS)}; known: {', '.join(TRAINERS)}")
    cls = TRAINERS[spec.trainer]
    trainer = cls(validated_params(cls.Params, spec.params, "victim.params"))
    if check_available:
        trainer.check()
    return TRANSFORMS[spec.transform](), trainer


def active_share(head: MLPHead, x: torch.Tensor) -> float | None:
    """Mean share of first-layer units that fire on a row (near 1: a near-linear head, members not identifiable)."""
    if len(head.layers) < 2 or len(x) == 0 or head.activation != "relu":
        return None
    return float(head.activation_patterns(x)[0].float().mean())


def build_victim(spec: VictimSpec, head: HeadRecipe, data: VictimData, seed: int, kind: str = "real",
                 null_mode: str | None = None, progress: bool = False) -> TrainedVictim:
    """Train the real victim (kind 'real') or its control (kind 'null', by `null_mode`)."""
    transform, trainer = recipe_parts(spec)
    u, labels = data.members, data.labels
    if kind == "null":
        if null_mode not in NULL_MODES:
            raise HarnessError("null_victim", null_mode, f"must be one of {', '.join(NULL_MODES)}")
        if null_mode == "disjoint":
            if data.null is None or len(data.null) == 0:
                raise HarnessError("null_victim", null_mode, "the split drew no disjoint null set; load it with this task")
            u, labels = data.null, data.null_labels
        if null_mode in ("shuffled", "disjoint"):
            labels = shuffled_labels(labels, seed)
    frame = transform.fit(u.float(), data.l2)
    x = frame.apply(u.float())
    num_classes = data.num_classes
    public = frame.apply(data.public.float())
    if kind == "null" and null_mode == "untrained":
        fitted = Paper().untrained(x, labels, num_classes, head, seed)
    else:
        fitted = trainer.fit(x, labels, num_classes, head, seed, progress, (public, data.public_labels))
    model = fitted.head
    own = getattr(trainer.params, "lr", None)  # a trainer's own step size, else the head recipe's
    field, value = ("victim.params.lr", own) if own is not None else ("head.lr", head.lr)
    # a step too large may stop training at a non-finite objective while the weights are still finite (1e17 and
    # up): that head is as diverged as one with NaN weights, and an attack on it measures nothing
    finite, report = model.is_finite(), fitted.report
    if not finite or (report is not None and report.stopped_by == "diverged"):
        what = ("objective" if finite else "weights") + (f" after {report.steps} steps" if report is not None else "")
        raise TrainingDiverged(field, value, f"the {kind} victim's training diverged (non-finite {what}); "
                               "lower it (half is a start) or train with head.optimizer lbfgs")
    victim = diagnosed(kind, model, head.loss, x, labels, frame, fitted.report,
                       accuracy(model, head.loss, public, data.public_labels), spec, fitted.info, progress)
    if not (kind == "null" and null_mode == "untrained") and victim.active_share == 0.0:  # gradient 0: "stationary"
        acc = f", train accuracy {fitted.report.train_acc:.2f}" if fitted.report is not None else ""
        raise HarnessError(field, value, f"the {kind} victim's training left every first-layer unit inactive on every "
                           f"training row (a dead head{acc}): it learned nothing to attack; check it (a step far too large kills every "
                           "unit) and the training rows")
    return victim


def diagnosed(kind: str, head: MLPHead, loss: str, x: torch.Tensor, labels: torch.Tensor, frame: Frame,
              report: TrainReport | None, test_acc: float, spec: VictimSpec, info: dict[str, Any],
              progress: bool = False) -> TrainedVictim:
    """The victim with what its training rows `x` (in its frame) say about it: the oracle residual, the share of
    units active per row, the members θ carries, those its first layer's row space holds and those with an activation
    pattern of their own."""
    residual, parts = oracle_fit(head, loss, x, labels, progress=progress)
    return TrainedVictim(kind, head, frame, labels, report, test_acc, residual, spec, info, active_share(head, x),
                         effective_members(parts), members_in_row_space(head, frame, x), members_with_own_pattern(head, x))


def attack_view(v: TrainedVictim, head: HeadRecipe, num_classes: int, prior: str = "norm",
                typical_norm: float | None = None, public: torch.Tensor | None = None) -> Victim:
    """What the attacker of `v` knows: a copy of its weights, its recipe and its published frame (and any
    public inputs, already in that frame)."""
    return Victim(head=copy.deepcopy(v.head), loss=head.loss, num_classes=num_classes, frame=v.frame,
                  weight_decay=head.weight_decay, prior=prior, typical_norm=typical_norm, public=public,
                  trainer=v.recipe.trainer)
