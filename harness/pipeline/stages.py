"""The stages of one unit, each a plain function of typed inputs to typed outputs."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch

from harness.attacks import attack_class, make_attack
from harness.attacks.base import AttackResult
from harness.attacks.priors import PUBLIC_INITS, domain_prior
from harness.backbones.cache import embed_cached
from harness.backbones.load import Backbone
from harness.classifiers.checkpoint import check_classes
from harness.data.split import MemberSplit
from harness.errors import HarnessError
from harness.heads.losses import output_dim, outputs_mismatch
from harness.heads.mlp import MLPHead
from harness.heads.train import accuracy
from harness.provenance import device_name
from harness.scoring import saturation
from harness.scoring.embedding import MatchScores, match
from harness.scoring.verdict import GOOD_COSINE
from harness.specs.task import AttackRecipe, HeadRecipe, TaskSpec
from harness.victims.build import TrainedVictim, VictimData, attack_view, build_victim, diagnosed
from harness.victims.frame import Frame
from harness.attacks.linear_sum import linear_signal
from harness.victims.spec import VictimSpec
from harness.victims.transforms import TRANSFORMS

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
    raw: torch.Tensor | None = None  # members, non-members, the disjoint null draw as embedded (normalised when asked)

    @property
    def dim(self) -> int:
        return self.members.shape[1]

    def rows(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Members, non-members and the disjoint null draw (empty without one), before any centring."""
        n, k = len(self.members), len(self.members) + len(self.nonmembers)
        raw = self.raw if self.raw is not None else torch.cat([self.members, self.nonmembers]) + self.mean
        return raw[:n], raw[n:k], raw[k:]


def embed_stage(backbone: Backbone, split: MemberSplit, normalize: bool, cache_dir: Path | None, progress: bool) -> Embedded:
    t0 = time.perf_counter()
    inputs = split.member_inputs + split.nonmember_inputs + split.null_inputs
    raw, hit, _ = embed_cached(backbone, inputs, cache_dir, progress)
    raw = raw.float()
    if normalize:
        raw = torch.nn.functional.normalize(raw, dim=1)
    k = split.n + len(split.nonmember_inputs)
    mem, non = raw[: split.n], raw[split.n : k]
    mean = mem.mean(0)
    return Embedded(mem - mean, non - mean, mean, normalize, hit, time.perf_counter() - t0, raw=raw)


def checkpoint_stage(backbone: Backbone, task: TaskSpec, split: MemberSplit) -> dict:
    """A classifier card: the task's classes are the checkpoint's labels (integer classes by the data's names for
    those label values), and the split reproduces its logits on up to 16 members and 16 non-members; returns what
    is attacked and the check, for the victims row."""
    info = backbone.classifier.info
    check_classes(info, task.classes, split.class_names)
    probe = split.member_inputs[:16] + split.nonmember_inputs[:16]
    return {**info.describe(), "logits_max_abs_diff": backbone.check_head(probe), "logits_checked_on": len(probe)}


def victim_data(emb: Embedded, split: MemberSplit) -> VictimData:
    """The rows a victim builder needs, as embedded (before any centring)."""
    members, public, null = emb.rows()
    return VictimData(
        members, torch.as_tensor(split.member_labels), len(split.class_names),
        public, torch.as_tensor(split.nonmember_labels),
        null if len(null) else None, torch.as_tensor(split.null_labels) if len(null) else None, emb.normalized,
    )


def train_stage(
    emb: Embedded,
    split: MemberSplit,
    recipe: HeadRecipe,
    seed: int,
    kind: str,
    progress: bool,
    null_mode: str | None = "disjoint",
    victim: VictimSpec | None = None,
) -> TrainedVictim:
    """Train the victim (kind 'real') or its control (kind 'null', by `null_mode`) with the task's
    victim recipe (input transform + trainer); see harness/victims/build.py."""
    return build_victim(victim or VictimSpec(), recipe, victim_data(emb, split), seed, kind, null_mode, progress)


STATED = ("recipe", "victim", "unit_id", "loss")  # what a head file's recon-harness metadata says of its training


class GivenHead(NamedTuple):
    """A head to attack as it is: from a file (its saved frame, and what its metadata states of its training) or a
    classifier checkpoint (no statement)."""

    head: MLPHead
    frame: Frame | None
    meta: dict = {}

    @property
    def l2(self) -> bool | None:
        """Whether its saved frame says its inputs were L2-normalised (None: no frame, or one that does not say)."""
        saved = self.meta.get("frame") if self.frame is not None else None
        said = saved.get("l2") if isinstance(saved, dict) else None
        return said if isinstance(said, bool) else None

    @property
    def stated(self) -> dict:
        return {k: self.meta[k] for k in STATED if k in self.meta}


def given_head_stage(head: MLPHead, loss: str, emb: Embedded, split: MemberSplit, path: str,
                     frame: Frame | None = None, stated: dict | None = None, field: str = "--head",
                     transform: str = "none") -> TrainedVictim:
    """A head the user was given, with the frame saved beside it (else: the task's `transform`, fitted on its members).
    `stated`: what the file's metadata says of its training (a recipe, a null victim's head), recorded as it is, not
    checked. `field`: what a refusal names (`--head`, or `model` for a classifier checkpoint's own head). Its accuracy
    on the task's members is recorded as its training accuracy: whether they can be the rows it was trained on."""
    if head.in_dim != emb.dim:
        raise HarnessError(field, path, f"takes {head.in_dim}-d inputs but the backbone embeds to {emb.dim}-d")
    if head.out_dim != output_dim(loss, len(split.class_names)):
        raise HarnessError(field, path, outputs_mismatch(head.out_dim, loss, len(split.class_names)))
    labels = torch.as_tensor(split.member_labels)
    data = victim_data(emb, split)
    if frame is None:  # a plain MLP file: the task's transform, fitted on its members as the recipes fit it
        frame = TRANSFORMS[transform]().fit(data.members.float(), emb.normalized)
    x = frame.apply(data.members)
    test_acc = accuracy(head, loss, frame.apply(data.public), torch.as_tensor(split.nonmember_labels))
    info = {"stated": stated} if stated else {}
    v = diagnosed("real", head, loss, x, labels, frame, None, test_acc, VictimSpec(transform=frame.transform, trainer="given"), info)
    return replace(v, train_acc=accuracy(head, loss, x, labels))


def public_norm(frame: Frame, emb: Embedded, public: torch.Tensor | None = None) -> float | None:
    """Median norm of the public non-members in a victim's frame: the norm prior's scale (`public`: those
    rows already in the frame, when the caller has them)."""
    public = frame.apply(emb.rows()[1]) if public is None else public
    return float(public.norm(dim=1).median()) if len(public) else None


def attack_stage(
    trained: TrainedVictim,
    emb: Embedded,
    recipe: HeadRecipe,
    attack: AttackRecipe,
    num_classes: int,
    pixels: bool,
    progress: bool,
) -> AttackResult:
    """Run the attack on what an attacker knows: weights, recipe, the victim's published frame, the public
    non-members in that frame (their norm the prior's scale; kkt's `init: public` starts there). Candidates
    come back centred by the members' mean, unscaled (the space scoring, selection and inversion work in)."""
    frame = trained.frame
    public = frame.apply(emb.rows()[1])
    typical = public_norm(frame, emb, public)
    prior = domain_prior(pixels)
    params = attack_class(attack.name).resolve(attack.params, prior, len(public), trained.recipe.trainer)  # planned: decided
    pool, _ = start_pool(params, len(public))
    victim = attack_view(trained, recipe, num_classes, prior, typical, public[pool])
    if trained.linear:  # a weighted sum of the members, scored as it is: no search
        result = linear_signal(victim, typical)
    else:
        result = make_attack(attack.name, params).reconstruct(victim, progress=progress)
    if len(result.candidates):
        c = result.candidates
        if frame.scale is None:  # a shift only (zero for the real victim, whose mean is the members')
            result.candidates = c + (frame.mean - emb.mean).to(c.dtype)
        else:
            result.candidates = (frame.to_raw(c.double()) - emb.mean.double()).to(c.dtype)
    # where the attack ran (a sweep writes its rows in another process): kkt records its device; the other attacks
    # (kkt-reference, a linear head's weighted sum) run on the CPU whatever the machine has
    result.device = device_name(result.runs[0].settings.get("device", "cpu") if result.runs else "cpu")
    return result


def start_pool(params: dict, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(pool, control): indices of the k non-members an attack with `params` may start candidates at, and of those
    its candidates are scored against (the 1%-FPR threshold). An attack that starts at public inputs (kkt `init:
    public | mixed`) draws from the odd-indexed half and is scored on the even-indexed half: a candidate resting
    at its start would otherwise match a scored non-member, and the threshold rise over the members (pixels,
    n = 100: a quarter of the non-members passed SSIM 0.4 with the shared pool, TPR 0.28 against 0.42;
    docs/scale.md). Any other attack: every non-member is both."""
    every = np.arange(k)
    if params.get("init") in PUBLIC_INITS and k >= 2:
        return every[1::2], every[0::2]
    return every, every


def finite_candidates(result: AttackResult) -> torch.Tensor:
    """(m,) bool: the candidates with no NaN or inf (diverged runs leave non-finite ones)."""
    if not len(result.candidates):
        return torch.zeros(0, dtype=torch.bool)
    return torch.isfinite(result.candidates).all(1)


def image_shape(split: MemberSplit) -> tuple[int, int, int]:
    """(C, H, W) of the member images, as the `identity` backbone flattens them (RGB)."""
    h, w = np.asarray(split.member_inputs[0].convert("RGB")).shape[:2]
    return 3, int(h), int(w)


def pixel_score_stage(result: AttackResult, emb: Embedded, fpr: float, shape: tuple[int, int, int],
                      progress: bool = False, floor: np.ndarray | None = None) -> PixelScores | None:
    """The published pixel-space score of the `identity` backbone: best SSIM of each member (and
    non-member) to any finite candidate; good at SSIM > 0.4 (Haim et al. 2022). None without candidates."""
    from harness.scoring.pixels import match_pixels

    ok = finite_candidates(result)
    if not ok.any():
        return None
    _, control = start_pool(result.params, len(emb.nonmembers))
    device = "cuda" if torch.cuda.is_available() else "cpu"  # the all-pairs SSIM screen
    scores = match_pixels(result.candidates[ok].double(), emb.members.double(), emb.nonmembers[control].double(),
                          emb.mean.double(), fpr=fpr, shape=shape, public=emb.nonmembers.double(), device=device,
                          progress=progress, member_public=floor)
    scores.member_best_idx = np.flatnonzero(ok.numpy())[scores.member_best_idx]  # indices into the full candidate list
    half = saturation.first_half(result)
    if half is not None and scores.good:  # with none found there is nothing the second half could have added
        scores.good_first_half = saturation.count_ssim(emb.members, result.candidates[half], emb.mean, shape, device)
    return scores


def score_stage(result: AttackResult, emb: Embedded, fpr: float) -> MatchScores:
    """Cosine in the centred space the attack works in, members vs. the non-member control.
    Non-finite candidates (diverged runs) are left out; with none left there is no threshold: the TPR is NaN (null on
    the row: not measured, not 0)."""
    m = len(result.candidates)
    ok = finite_candidates(result)
    _, control = start_pool(result.params, len(emb.nonmembers))
    if not ok.any():
        n, k = len(emb.members), len(control)
        nan = lambda size: np.full(size, np.nan)  # noqa: E731
        return MatchScores(nan(n), np.full(n, -1), nan(k), nan(m), np.full(m, -1), float("nan"), fpr, float("nan"))  # unmeasured
    keep = np.flatnonzero(ok.numpy())
    scores = match(result.candidates[ok].double(), emb.members.double(), emb.nonmembers[control].double(), fpr=fpr,
                   public=emb.nonmembers.double())
    scores.member_best_idx = keep[scores.member_best_idx]  # indices into the full candidate list
    half = saturation.first_half(result)
    if half is not None:
        scores.good_first_half = saturation.count_cosine(emb.members, result.candidates[half], GOOD_COSINE)
    full_best, full_member = np.full(m, np.nan), np.full(m, -1)
    full_best[keep], full_member[keep] = scores.candidate_best, scores.candidate_member
    scores.candidate_best, scores.candidate_member = full_best, full_member
    return scores
