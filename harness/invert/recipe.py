"""What the evidence stages (selection, inversion) do for a task; validated like every spec."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

RelaxLength = Annotated[int, Field(ge=1, le=256)]


class EvidenceRecipe(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)  # .inf / .nan: refused, not trained on

    enabled: StrictBool = Field(True, description="select and invert after the attack")
    select_method: Literal["agglomerative", "dbscan"] = "agglomerative"
    min_cosine: float = Field(0.7, gt=0, lt=1, description="cosine at which two candidates share a cluster")
    select_loss_factor: float | None = Field(
        10.0, ge=1, description="pool only runs whose KKT loss is within this factor of the best run's (null: every run)"
    )
    select_suppress: float | None = Field(
        None, gt=0, le=1, description="rank a representative this close (cosine) to a better one behind the rest (null: off)"
    )
    select_weigh_lambda: StrictBool = Field(
        True, description="weigh each cluster's confidence by its candidates' median multiplier λ (false: recurrence x tightness alone)"
    )
    invert_top: int = Field(10, ge=0, description="top selections to invert")
    invert_members: int = Field(10, ge=0, description="true member embeddings to invert too (the upper bound)")
    corpus: list[str] = Field(
        default_factory=list, description="text: extra retrieval corpora (local files or Hub data set ids, SOURCE[:COLUMN])"
    )
    word_search_top: int = Field(1, ge=0, description="text: selections (and as many members) to invert by word search")
    word_vocab: Literal["corpus", "tokenizer"] = Field(
        "corpus", description="text: word search over the retrieval corpus's words (split words included) or the tokenizer's whole words"
    )
    word_members_out: StrictBool = Field(
        True, description="text: leave the member sentences out of the word-search corpus, so no word reaches the vocabulary through a member alone"
    )
    word_fluency: float = Field(
        0.01, ge=0, description="text: weight of a word-bigram model of the word-search corpus in the search's objective (0: cosine alone)"
    )
    word_prior: float = Field(
        0.01, ge=0, description="text: weight of a learned word prior (a linear word classifier trained on the word-search corpus's embeddings) in the search's objective (0: off)"
    )
    word_prior_epochs: int = Field(40, ge=1, le=1000, description="text: training epochs of the word prior")
    word_passes: int = Field(
        10, ge=0, le=100, description="text: rounds of local search (move, delete or replace one word; with word_insert, insert one) after the growth; the search stops early when nothing improves"
    )
    word_relax_steps: int = Field(
        300, ge=0, le=10000,
        description="text: steps of the relaxed sentence (soft tokens through the backbone) whose likeliest words join the search's candidates (0: off)",
    )
    word_relax_top: int = Field(2, ge=1, le=64, description="text: words the relaxed sentence offers per position")
    word_relax_length: RelaxLength | Annotated[list[RelaxLength], Field(min_length=1, max_length=4)] = Field(
        20, description="text: positions of the relaxed sentence; a list relaxes one sentence per length "
        "and offers the words of all of them (each length its own optimisation)")
    word_grow_on: Literal["cosine", "objective"] = Field(
        "cosine", description="text: what must rise for the search's growth to go on: the plain cosine, or the "
        "objective with its priors' terms (the choice of words is the objective's either way)")
    word_insert: StrictBool = Field(
        False, description="text: the local search may also insert one candidate word anywhere, tried when no move, deletion "
        "or replacement improves (cosine +0.03-0.05, token F1 within noise, 1.6-1.8x the time: docs/evidence.md)")
    word_shortlist: int = Field(32, ge=1, le=4096)
    word_beam: int = Field(2, ge=1, le=64)
    dip_steps: int = Field(300, ge=1, description="images: Deep Image Prior steps per batch of targets")
    dip_lr: float = Field(1e-2, gt=0)
    dip_refine_steps: int = Field(100, ge=0, description="images: pixel-space polish after the generator")
    dip_width: int = Field(16, ge=2, le=256)


def selection_settings(evidence: dict) -> dict:
    """Of a task's evidence settings (as dumped), those that change the selection: the select_* fields and
    min_cosine. The rest steer inversion, which a sweep never runs and no leaderboard column reads."""
    return {k: v for k, v in evidence.items() if k.startswith("select") or k == "min_cosine"}
