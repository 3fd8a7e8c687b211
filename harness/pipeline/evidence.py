"""From candidates to evidence: select (no ground truth), invert (image / text), score vs. members.

Stage functions of plain typed inputs, like stages.py. The harness scores selections and
inversions against the members afterwards; nothing here that ranks or inverts looks at them.
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from harness.attacks.base import AttackResult
from harness.backbones.load import Backbone
from harness.data.split import MemberSplit
from harness.invert.recipe import EvidenceRecipe
from harness.invert.space import EmbedSpace
from harness.pipeline.stages import Embedded, finite_candidates
from harness.progress import bar as progress_bar
from harness.scoring.embedding import MatchScores, cosine_matrix
from harness.select import Selection, TopK, lowest_loss_order, score_selection, select_candidates
from harness.select.score import KS


@dataclass
class VictimEvidence:
    selection: Selection | None  # None when the attack left no usable candidate
    cluster: TopK | None
    baseline: TopK | None
    threshold: float
    select_s: float
    inversions: list[dict] = field(default_factory=list)  # rows without provenance
    invert_s: float = 0.0


PRIOR_WORDS = 8000  # the word prior's outputs: the corpus's most frequent words


def select_stage(result: AttackResult, emb: Embedded, scores: MatchScores, recipe: EvidenceRecipe) -> VictimEvidence:
    """Cluster and rank the candidates; score the ranking and the lowest-loss baseline at the victim's threshold."""
    t0 = time.perf_counter()
    finite = finite_candidates(result).numpy()
    if not finite.any():
        return VictimEvidence(None, None, None, scores.threshold, time.perf_counter() - t0)
    losses = {r.run_id: r.final_loss for r in result.runs}
    sel = select_candidates(
        result.candidates, result.run_ids, losses, result.lambdas, method=recipe.select_method, min_cosine=recipe.min_cosine,
        loss_factor=recipe.select_loss_factor, suppress_cosine=recipe.select_suppress,
    )
    s = time.perf_counter() - t0
    members = emb.members
    cluster = score_selection(result.candidates[sel.rep_index], members, scores.threshold, KS)
    order = lowest_loss_order(result.run_ids, losses, result.lambdas, finite)
    baseline = score_selection(result.candidates[order], members, scores.threshold, KS)
    return VictimEvidence(sel, cluster, baseline, scores.threshold, s)


def png_bytes(img: np.ndarray) -> bytes:
    """(H, W, 3) float in [0, 1] -> PNG."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray((np.clip(img, 0, 1) * 255).round().astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _targets(ev: VictimEvidence, result: AttackResult, emb: Embedded, recipe: EvidenceRecipe):
    """[(kind, index, rank, centred vector)] for the top selections and the first members."""
    out = []
    if ev.selection is not None:
        for rank, c in enumerate(ev.selection.rep_index[: recipe.invert_top].tolist()):
            out.append(("selected", c, rank, result.candidates[c].float()))
    for i in range(min(recipe.invert_members, len(emb.members))):
        out.append(("member", i, None, emb.members[i].float()))
    return out


def _base_row(kind, index, rank, method, member, mcos, cosine, wall, details) -> dict:
    return {
        "target_kind": kind, "target": int(index), "rank": rank, "method": method, "matched_member": int(member),
        "target_member_cosine": float(mcos), "cosine": float(cosine), "wall_s": float(wall),
        "details": json.dumps(details, sort_keys=True),
    }


def invert_text(
    space: EmbedSpace, split: MemberSplit, emb: Embedded, targets: list, recipe: EvidenceRecipe,
    base_dir: Path | None = None, progress: bool = False,
) -> list[dict]:
    from harness.invert.corpus import load_corpus
    from harness.invert.metrics import text_metrics
    from harness.invert.text import BigramLM, WordSearch, corpus_words, retrieve
    from harness.invert.word_prior import WordPrior

    if not targets:
        return []
    corpus, parts = list(map(str, split.nonmember_inputs)), [emb.nonmembers.float()]
    for spec in recipe.corpus:
        texts = load_corpus(spec, base_dir)
        corpus += texts
        parts.append(space.embed(texts, cached=True))
    corpus_emb = torch.cat(parts) if corpus else torch.empty(0, space.dim)
    vecs = torch.stack([t[3] for t in targets])
    near = cosine_matrix(vecs, emb.members)
    mcos, mem = near.max(1)
    rows = []
    if len(corpus):
        t0 = time.perf_counter()
        got = retrieve(vecs, corpus, corpus_emb)
        per = (time.perf_counter() - t0) / len(targets)
        for j, (kind, idx, rank, _) in enumerate(targets):
            ref = str(split.member_inputs[int(mem[j])])
            row = _base_row(kind, idx, rank, "retrieval", mem[j], mcos[j], got.cosine[j], per, {"corpus_size": got.corpus_size})
            rows.append({**row, "text": got.texts[j], "reference_text": ref, **text_metrics(got.texts[j], ref)})
    k = recipe.word_search_top
    chosen = [j for j, t in enumerate(targets) if t[0] == "selected"][:k] + [j for j, t in enumerate(targets) if t[0] == "member"][:k]
    if chosen:
        keep = word_corpus(corpus, split, recipe)
        public = [corpus[i] for i in keep]
        ranked = corpus_words(public)  # most frequent first: the vocabulary, and the prior's outputs
        words = ranked if recipe.word_vocab == "corpus" and public else None
        lm = BigramLM.fit(public) if recipe.word_fluency and public else None
        prior = None
        if recipe.word_prior and public:
            t0 = time.perf_counter()
            prior = WordPrior.fit(public, corpus_emb[keep], ranked[:PRIOR_WORDS], recipe.word_prior_epochs, progress=progress)
            prior_s = time.perf_counter() - t0
        ws = WordSearch(space, shortlist=recipe.word_shortlist, beam=recipe.word_beam, passes=recipe.word_passes, words=words, lm=lm,
                        fluency=recipe.word_fluency, prior=prior, prior_weight=recipe.word_prior)
        extra = {"fluency": recipe.word_fluency if lm else 0.0, "prior_weight": recipe.word_prior if prior else 0.0,
                 "prior_words": len(prior.words) if prior else 0, "prior_train_s": round(prior_s, 2) if prior else 0.0}
        for j in progress_bar(chosen, desc="word search", unit="target", disable=not progress):
            kind, idx, rank, vec = targets[j]
            t0 = time.perf_counter()
            text, cos, n_eval = ws.invert(vec)
            ref = str(split.member_inputs[int(mem[j])])
            row = _base_row(kind, idx, rank, "word-search", mem[j], mcos[j], cos, time.perf_counter() - t0, {"evaluated": n_eval, **extra})
            rows.append({**row, "text": text, "reference_text": ref, **text_metrics(text, ref)})
    return rows


def word_corpus(corpus: list[str], split: MemberSplit, recipe: EvidenceRecipe) -> list[int]:
    """Indices of the sentences the word search learns from (vocabulary, bigram model, word prior):
    the retrieval corpus, less every sentence that holds a member sentence or is held by one, as
    whole words (`word_members_out`)."""
    if not recipe.word_members_out:
        return list(range(len(corpus)))
    members = [_spaced(m) for m in split.member_inputs]

    def overlaps(sentence: str) -> bool:
        k = _spaced(sentence)
        return any(k in m or m in k for m in members)

    return [i for i, s in enumerate(corpus) if not overlaps(s)]


def _spaced(text) -> str:
    """Lower-cased words joined by single spaces, padded: substring tests then match whole words."""
    return f" {' '.join(str(text).lower().split())} "


def member_images(split: MemberSplit) -> list[np.ndarray]:
    return [np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0 for im in split.member_inputs]


def invert_image(space: EmbedSpace, split: MemberSplit, emb: Embedded, targets: list, recipe: EvidenceRecipe) -> list[dict]:
    import torch.nn.functional as F

    from harness.invert.dip import invert_images
    from harness.invert.metrics import image_metrics

    if not targets:
        return []
    vecs = torch.stack([t[3] for t in targets])
    res = invert_images(
        space, vecs, steps=recipe.dip_steps, lr=recipe.dip_lr, width=recipe.dip_width, refine_steps=recipe.dip_refine_steps
    )
    mcos, mem = cosine_matrix(vecs, emb.members).max(1)
    refs = member_images(split)
    method = "identity" if space.backbone.card.is_identity else "dip"
    rows = []
    for j, (kind, idx, rank, _) in enumerate(targets):
        ref = refs[int(mem[j])]
        img = res.images[j : j + 1]
        if img.shape[-2:] != ref.shape[:2]:
            img = F.interpolate(img, size=ref.shape[:2], mode="bilinear", align_corners=False, antialias=True)
        img = img[0].permute(1, 2, 0).clamp(0, 1).numpy().astype(np.float32)
        row = _base_row(kind, idx, rank, method, mem[j], mcos[j], res.cosine[j], res.seconds_per_target, {"steps": res.steps})
        rows.append({**row, "image_png": png_bytes(img), "reference_png": png_bytes(ref), **image_metrics(img, ref)})
    return rows


def invert_stage(
    ev: VictimEvidence, backbone: Backbone, split: MemberSplit, emb: Embedded, result: AttackResult,
    recipe: EvidenceRecipe, cache_dir: Path | None = None, base_dir: Path | None = None, progress: bool = False,
) -> VictimEvidence:
    """Invert the top selections and the first true members (the upper bound) on the backbone."""
    t0 = time.perf_counter()
    space = EmbedSpace(backbone, emb.normalized, emb.mean, cache_dir)
    targets = _targets(ev, result, emb, recipe)
    if backbone.card.modality == "text":
        ev.inversions = invert_text(space, split, emb, targets, recipe, base_dir, progress)
    else:
        ev.inversions = invert_image(space, split, emb, targets, recipe)
    ev.invert_s = time.perf_counter() - t0
    return ev


def selection_rows(base: dict, kind: str, ev: VictimEvidence, recipe: EvidenceRecipe) -> list[dict]:
    sel, top = ev.selection, ev.cluster
    if sel is None:
        return []
    return [
        {
            **base, "victim": kind, "rank": r, "candidate": int(sel.rep_index[r]), "size": int(sel.size[r]),
            "support": int(sel.support[r]), "tightness": float(sel.tightness[r]), "confidence": float(sel.confidence[r]),
            "method": sel.method, "min_cosine": sel.min_cosine, "loss_factor": sel.params["loss_factor"],
            "suppress_cosine": sel.params["suppress_cosine"], "duplicate_of": int(sel.duplicate_of[r]),
            "matched_member": int(top.member[r]),
            "member_score": float(top.score[r]), "hit": bool(top.hits[r]),
        }
        for r in range(len(sel))
    ]


def selection_score_rows(base: dict, kind: str, ev: VictimEvidence) -> list[dict]:
    rows = []
    for strategy, top in (("cluster", ev.cluster), ("lowest-loss", ev.baseline)):
        if top is None:
            continue
        for k in top.ks:
            rows.append({
                **base, "victim": kind, "strategy": strategy, "k": k, "precision": top.precision[k],
                "recall": top.recall[k], "threshold": ev.threshold if np.isfinite(ev.threshold) else None,
                "n_selected": len(top.hits), "select_s": ev.select_s,
            })
    return rows


def inversion_rows(base: dict, kind: str, ev: VictimEvidence) -> list[dict]:
    return [{**base, "victim": kind, **r} for r in ev.inversions]
