"""The stages of one unit, each a plain function of typed inputs to typed outputs."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from harness.attacks import make_attack
from harness.attacks.base import AttackResult, Victim
from harness.backbones.cache import embed_cached
from harness.backbones.load import Backbone
from harness.data.split import MemberSplit
from harness.diagnostics.oracle import oracle_residual
from harness.errors import HarnessError
from harness.heads.losses import output_dim
from harness.heads.mlp import MLPHead
from harness.heads.train import TrainConfig, TrainReport, accuracy, fit_head
from harness.scoring.embedding import MatchScores, match
from harness.scoring.null_victim import shuffled_labels
from harness.specs.task import AttackRecipe, HeadRecipe

if TYPE_CHECKING:
    from harness.scoring.pixels import PixelScores


@dataclass
class Embedded:
    members: torch.Tensor  # (n, d) centred (and normalised first, when asked)
    nonmembers: torch.Tensor  # (k, d) centred with the member mean
    mean: torch.Tensor  # (d,) the member mean that was subtracted
    normalized: bool
    cache_hit: bool
    wall_s: float
    null_members: torch.Tensor | None = None  # the disjoint null victim's training set, centred by null_mean
    null_mean: torch.Tensor | None = None

    @property
    def dim(self) -> int:
        return self.members.shape[1]


def embed_stage(backbone: Backbone, split: MemberSplit, normalize: bool, cache_dir: Path | None, progress: bool) -> Embedded:
    t0 = time.perf_counter()
    inputs = split.member_inputs + split.nonmember_inputs + split.null_inputs
    raw, hit, _ = embed_cached(backbone, inputs, cache_dir, progress)
    raw = raw.float()
    if normalize:
        raw = torch.nn.functional.normalize(raw, dim=1)
    k = split.n + len(split.nonmember_inputs)
    mem, non, null = raw[: split.n], raw[split.n : k], raw[k:]
    mean = mem.mean(0)
    emb = Embedded(mem - mean, non - mean, mean, normalize, hit, time.perf_counter() - t0)
    if len(null):
        emb.null_mean = null.mean(0)
        emb.null_members = null - emb.null_mean
    return emb


@dataclass
class TrainedVictim:
    kind: str  # "real" or "null"
    head: MLPHead
    labels: torch.Tensor  # the labels the head was trained on
    report: TrainReport | None  # None for a head given as a file
    test_acc: float
    oracle_residual: float
    # added to the victim's own centred vectors to express them centred by the members' mean
    # (non-zero only for the disjoint null, which subtracted the mean of its own training set)
    shift: torch.Tensor | None = None


def train_stage(
    emb: Embedded,
    split: MemberSplit,
    recipe: HeadRecipe,
    seed: int,
    kind: str,
    progress: bool,
    null_mode: str | None = "disjoint",
) -> TrainedVictim:
    """Train the victim head. Kind 'null' is the control: trained on a seeded shuffle of the labels
    of a disjoint draw (null_mode 'disjoint') or of the members ('shuffled'), or left at its
    initialisation ('untrained')."""
    labels = torch.as_tensor(split.member_labels)
    x, shift = emb.members, None
    if kind == "null" and null_mode == "disjoint":
        if emb.null_members is None:
            raise HarnessError("null_victim", null_mode, "the split drew no disjoint null set; load it with this task")
        labels, x = torch.as_tensor(split.null_labels), emb.null_members
        shift = emb.null_mean - emb.mean
    if kind == "null" and null_mode in ("shuffled", "disjoint"):
        labels = shuffled_labels(labels, seed)
    num_classes = len(split.class_names)
    cfg = TrainConfig(
        loss=recipe.loss, optimizer=recipe.optimizer, lr=recipe.lr, weight_decay=recipe.weight_decay,
        max_steps=recipe.max_steps, target_loss=recipe.target_loss, grad_tol=recipe.grad_tol, seed=seed,
        plateau_steps=recipe.plateau_steps, plateau_tol=recipe.plateau_tol,
    )
    trained = not (kind == "null" and null_mode == "untrained")
    head, report = fit_head(x, labels, num_classes, recipe.widths, recipe.bias, recipe.init_scale, cfg, seed, trained, progress)
    non_labels = torch.as_tensor(split.nonmember_labels)
    non = emb.nonmembers if shift is None else emb.nonmembers - shift  # in the head's own centring
    test_acc = accuracy(head, recipe.loss, non, non_labels)
    residual = oracle_residual(head, recipe.loss, x, labels)  # on the head's own training set
    return TrainedVictim(kind, head, labels, report, test_acc, residual, shift)


def given_head_stage(head: MLPHead, loss: str, emb: Embedded, split: MemberSplit, path: str) -> TrainedVictim:
    """A head the user was given: check it fits the embedding, then treat it as the victim."""
    if head.in_dim != emb.dim:
        raise HarnessError("head", path, f"takes {head.in_dim}-d inputs but the backbone embeds to {emb.dim}-d")
    want = output_dim(loss, len(split.class_names))
    if head.out_dim != want:
        raise HarnessError("head", path, f"has {head.out_dim} outputs; loss {loss!r} over {len(split.class_names)} classes needs {want}")
    labels = torch.as_tensor(split.member_labels)
    test_acc = accuracy(head, loss, emb.nonmembers, torch.as_tensor(split.nonmember_labels))
    return TrainedVictim("real", head, labels, None, test_acc, oracle_residual(head, loss, emb.members, labels))


def attack_stage(
    trained: TrainedVictim,
    emb: Embedded,
    recipe: HeadRecipe,
    attack: AttackRecipe,
    num_classes: int,
    pixels: bool,
    progress: bool,
) -> AttackResult:
    """Run the attack on what an attacker knows: weights, recipe, the victim's training mean, a public
    norm estimate. Candidates come back centred by the members' mean (see TrainedVictim.shift)."""
    typical = float(emb.nonmembers.norm(dim=1).median()) if len(emb.nonmembers) else None
    victim = Victim(
        head=copy.deepcopy(trained.head),
        loss=recipe.loss,
        num_classes=num_classes,
        mean=emb.mean if trained.shift is None else emb.mean + trained.shift,
        weight_decay=recipe.weight_decay,
        prior="box" if pixels else "norm",
        typical_norm=typical,
    )
    result = make_attack(attack.name, attack.params).reconstruct(victim, progress=progress)
    if trained.shift is not None:
        result.candidates = result.candidates + trained.shift.to(result.candidates.dtype)
    return result


def finite_candidates(result: AttackResult) -> torch.Tensor:
    """(m,) bool: the candidates with no NaN or inf (diverged runs leave non-finite ones)."""
    if not len(result.candidates):
        return torch.zeros(0, dtype=torch.bool)
    return torch.isfinite(result.candidates).all(1)


def image_shape(split: MemberSplit) -> tuple[int, int, int]:
    """(C, H, W) of the member images, as the `identity` backbone flattens them (RGB)."""
    h, w = np.asarray(split.member_inputs[0].convert("RGB")).shape[:2]
    return 3, int(h), int(w)


def pixel_score_stage(result: AttackResult, emb: Embedded, fpr: float, shape: tuple[int, int, int]) -> PixelScores | None:
    """The published pixel-space score of the `identity` backbone: best SSIM of each member (and
    non-member) to any finite candidate; good at SSIM > 0.4 (Haim et al. 2022). None without candidates."""
    from harness.scoring.pixels import match_pixels

    ok = finite_candidates(result)
    if not ok.any():
        return None
    return match_pixels(result.candidates[ok].double(), emb.members.double(), emb.nonmembers.double(), emb.mean.double(), fpr=fpr, shape=shape)


def score_stage(result: AttackResult, emb: Embedded, fpr: float) -> MatchScores:
    """Cosine in the centred space the attack works in, members vs. the non-member control.
    Non-finite candidates (diverged runs) are left out; with none left, nothing is reconstructed."""
    m = len(result.candidates)
    ok = finite_candidates(result)
    if not ok.any():
        n, k = len(emb.members), len(emb.nonmembers)
        nan = lambda size: np.full(size, np.nan)  # noqa: E731
        return MatchScores(nan(n), np.full(n, -1), nan(k), nan(m), np.full(m, -1), float("nan"), fpr, 0.0)
    keep = np.flatnonzero(ok.numpy())
    scores = match(result.candidates[ok].double(), emb.members.double(), emb.nonmembers.double(), fpr=fpr)
    scores.member_best_idx = keep[scores.member_best_idx]  # indices into the full candidate list
    full_best, full_member = np.full(m, np.nan), np.full(m, -1)
    full_best[keep], full_member[keep] = scores.candidate_best, scores.candidate_member
    scores.candidate_best, scores.candidate_member = full_best, full_member
    return scores
