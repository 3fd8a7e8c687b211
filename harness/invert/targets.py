"""Invert embeddings back to the input domain for the evidence stage: text by retrieval and word search,
images by a deep image prior; each target is scored against its nearest member (the harness's view)."""

from __future__ import annotations

import hashlib
import io
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from harness.data.split import MemberSplit
from harness.invert.recipe import EvidenceRecipe
from harness.invert.space import EmbedSpace
from harness.progress import bar as progress_bar
from harness.scoring.embedding import cosine_matrix

if TYPE_CHECKING:
    from harness.pipeline.stages import Embedded

PRIOR_WORDS = 8000  # the word prior's outputs: the corpus's most frequent words


def png_bytes(img: np.ndarray) -> bytes:
    """(H, W, 3) float in [0, 1] -> PNG."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray((np.clip(img, 0, 1) * 255).round().astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


@dataclass
class Target:
    """One vector to invert: a selected candidate (by its selection rank) or a true member (the upper bound)."""

    origin: str  # "selected" | "member"
    index: int  # candidate index (selected) or member index
    rank: int | None  # selection rank; None for members
    vector: torch.Tensor  # centred by the members' mean, in the backbone's embedding space


def inversion_targets(rep_index: list[int], candidates: torch.Tensor, members: torch.Tensor, recipe: EvidenceRecipe) -> list[Target]:
    """The top `invert_top` selections and the first `invert_members` members."""
    out = [Target("selected", c, rank, candidates[c].float()) for rank, c in enumerate(rep_index[: recipe.invert_top])]
    return out + [Target("member", i, None, members[i].float()) for i in range(min(recipe.invert_members, len(members)))]


def _base_row(origin, index, rank, method, member, mcos, cosine, wall, details) -> dict:
    return {
        "target_kind": origin, "target": int(index), "rank": rank, "method": method, "matched_member": int(member),
        "target_member_cosine": float(mcos), "cosine": float(cosine), "wall_s": float(wall),
        "details": json.dumps(details, sort_keys=True),
    }


def search_keys(space: EmbedSpace, recipe: EvidenceRecipe, public: list[str], vectors: list[torch.Tensor]) -> list[str]:
    """What each target's word search depends on: the backbone and its revision, the space (normalised?, mean), the
    evidence recipe, the public sentences it learns from (hashed once for all targets), and the target; equal keys,
    equal results."""
    h = hashlib.sha256()
    bb = space.backbone
    h.update(json.dumps([bb.card.id, bb.resolved.revision, space.normalize, recipe.model_dump(mode="json")], sort_keys=True).encode())
    h.update(_tensor_bytes(space.mean))
    for s in public:
        h.update(s.encode() + b"\0")
    keys = []
    for v in vectors:
        k = h.copy()
        k.update(_tensor_bytes(v))
        keys.append(k.hexdigest())
    return keys


def _tensor_bytes(t: torch.Tensor) -> bytes:
    return t.detach().float().cpu().contiguous().numpy().tobytes()


def invert_text(
    space: EmbedSpace, split: MemberSplit, emb: "Embedded", targets: list, recipe: EvidenceRecipe,
    base_dir: Path | None = None, progress: bool = False, memo: dict | None = None,
) -> list[dict]:
    """Retrieval for every target, word search for the first `word_search_top` selections and members. `memo`
    (kept by the caller across units of one run) holds finished word searches by `search_keys`: a target that
    another unit already searched under the same settings (the same member, two victim recipes) is not searched
    again; its row says `reused` and keeps the seconds the search took."""
    from harness.invert.corpus import load_corpus
    from harness.invert.metrics import text_metrics
    from harness.invert.relaxed import RelaxedWords, relaxable
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
    vecs = torch.stack([t.vector for t in targets])
    near = cosine_matrix(vecs, emb.members)
    mcos, mem = near.max(1)
    rows = []
    if len(corpus):
        t0 = time.perf_counter()
        got = retrieve(vecs, corpus, corpus_emb)
        per = (time.perf_counter() - t0) / len(targets)
        for j, t in enumerate(targets):
            ref = str(split.member_inputs[int(mem[j])])
            row = _base_row(t.origin, t.index, t.rank, "retrieval", mem[j], mcos[j], got.cosine[j], per, {"corpus_size": got.corpus_size})
            rows.append({**row, "text": got.texts[j], "reference_text": ref, **text_metrics(got.texts[j], ref)})
    k = recipe.word_search_top
    chosen = [j for j, t in enumerate(targets) if t.origin == "selected"][:k] + [j for j, t in enumerate(targets) if t.origin == "member"][:k]
    words_rows: dict[int, dict] = {}
    if chosen:
        keep = word_corpus(corpus, split, recipe)
        public = [corpus[i] for i in keep]
        memo = {} if memo is None else memo
        keys = dict(zip(chosen, search_keys(space, recipe, public, [targets[j].vector for j in chosen])))
        words_rows = {j: _word_row(targets[j], mem[j], mcos[j], split, *memo[keys[j]], reused=True) for j in chosen if keys[j] in memo}
    todo = [j for j in chosen if j not in words_rows]
    if todo:
        ranked = corpus_words(public)  # most frequent first: the vocabulary, and the prior's outputs
        words = ranked if recipe.word_vocab == "corpus" and public else None
        lm = BigramLM.fit(public) if recipe.word_fluency and public else None
        prior = None
        if recipe.word_prior and public:
            t0 = time.perf_counter()
            prior = WordPrior.fit(public, corpus_emb[keep], ranked[:PRIOR_WORDS], recipe.word_prior_epochs, progress=progress)
            prior_s = time.perf_counter() - t0
        relax = RelaxedWords(space, recipe.word_relax_steps, recipe.word_relax_length, recipe.word_relax_top)
        ws = WordSearch(space, shortlist=recipe.word_shortlist, beam=recipe.word_beam, passes=recipe.word_passes, words=words, lm=lm,
                        fluency=recipe.word_fluency, prior=prior, prior_weight=recipe.word_prior, grow_on=recipe.word_grow_on,
                        insert=recipe.word_insert)
        ws.vocabulary(progress)  # embedded here, with a bar, not silently inside the first target's search
        extra = {"grow_on": recipe.word_grow_on, "insert": recipe.word_insert, "relax_steps": recipe.word_relax_steps if relaxable(space) else 0,
                 "relax_length": recipe.word_relax_length,
                 "relax_top": recipe.word_relax_top, "fluency": recipe.word_fluency if lm else 0.0,
                 "prior_weight": recipe.word_prior if prior else 0.0, "prior_words": len(prior.words) if prior else 0,
                 "prior_train_s": round(prior_s, 2) if prior else 0.0}
        for j in progress_bar(todo, desc="word search", unit="target", disable=not progress):
            t = targets[j]
            t0 = time.perf_counter()
            offered, relax_cos = relax.words(t.vector)
            text, cos, n_eval = ws.invert(t.vector, offered)
            details = {"evaluated": n_eval, "relaxed_words": len(offered), "relaxed_cosine": relax_cos, **extra}
            memo[keys[j]] = (text, cos, time.perf_counter() - t0, details)
            words_rows[j] = _word_row(t, mem[j], mcos[j], split, *memo[keys[j]])
    return rows + [words_rows[j] for j in chosen]


def _word_row(t: Target, member, mcos, split: MemberSplit, text: str, cos: float, wall: float, details: dict,
              reused: bool = False) -> dict:
    from harness.invert.metrics import text_metrics

    ref = str(split.member_inputs[int(member)])
    row = _base_row(t.origin, t.index, t.rank, "word-search", member, mcos, cos, wall, {**details, "reused": reused})
    return {**row, "text": text, "reference_text": ref, **text_metrics(text, ref)}


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


def member_images(split: MemberSplit, backbone) -> list[np.ndarray]:
    """Each member as the backbone saw it (its processor's resize and crop: DINOv2 crops 224 of 256, so the inversion
    can rebuild no more than that part), at the member's own size; HxWx3 in [0, 1]. The identity's: the member."""
    import torch.nn.functional as F

    from harness.backbones.load import to_rgb

    out = []
    for im in split.member_inputs:
        own = np.asarray(to_rgb(im), dtype=np.float32) / 255.0
        seen = backbone.seen(im)
        if seen.shape != own.shape:
            t = torch.from_numpy(seen).permute(2, 0, 1)[None]
            t = F.interpolate(t, size=own.shape[:2], mode="bilinear", align_corners=False, antialias=True)
            seen = t[0].permute(1, 2, 0).clamp(0, 1).numpy().astype(np.float32)
        out.append(seen)
    return out


def invert_image(space: EmbedSpace, split: MemberSplit, emb: "Embedded", targets: list, recipe: EvidenceRecipe,
                 progress: bool = False) -> list[dict]:
    import torch.nn.functional as F

    from harness.invert.dip import invert_images
    from harness.invert.metrics import image_metrics

    if not targets:
        return []
    vecs = torch.stack([t.vector for t in targets])
    res = invert_images(
        space, vecs, steps=recipe.dip_steps, lr=recipe.dip_lr, width=recipe.dip_width, refine_steps=recipe.dip_refine_steps,
        progress=progress,
    )
    mcos, mem = cosine_matrix(vecs, emb.members).max(1)
    refs = member_images(split, space.backbone)
    method = "identity" if space.backbone.card.is_identity else "dip"
    rows = []
    for j, t in enumerate(targets):
        ref = refs[int(mem[j])]
        img = res.images[j : j + 1]
        if img.shape[-2:] != ref.shape[:2]:
            img = F.interpolate(img, size=ref.shape[:2], mode="bilinear", align_corners=False, antialias=True)
        img = img[0].permute(1, 2, 0).clamp(0, 1).numpy().astype(np.float32)
        row = _base_row(t.origin, t.index, t.rank, method, mem[j], mcos[j], res.cosine[j], res.seconds_per_target, {"steps": res.steps})
        rows.append({**row, "image_png": png_bytes(img), "reference_png": png_bytes(ref), **image_metrics(img, ref)})
    return rows
