"""Text inversion: (a) retrieval from a public corpus by cosine, (b) a beam search over words.

Both work in the attack's space (centred, normalised as the victim's inputs were) and maximise
the cosine to the target. The word search draws single words from a vocabulary (the retrieval
corpus's words by default, or the tokenizer's whole words); no corpus sentence seeds it, so it
measures what the embedding gives away word by word. Candidate words are
the target's `shortlist` (vocabulary words whose own embedding is closest to the target) plus
common function words, and any words the caller offers (the relaxed sentence's, relaxed.py); see
WordSearch for the search itself.
"""

from __future__ import annotations

import math
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Literal, Sequence

import torch

from harness.invert.space import EmbedSpace
from harness.invert.word_prior import WordPrior
from harness.scoring.embedding import cosine_matrix

WORD = re.compile(r"^([a-z]+|n't|'[a-z]{1,2}|[!?,.;:'\-])$")  # words, clitics ('s, n't), punctuation


@dataclass
class Retrieved:
    index: torch.Tensor  # (t,) corpus index of the best match
    cosine: torch.Tensor  # (t,)
    texts: list[str]
    corpus_size: int


def retrieve(targets: torch.Tensor, corpus: list[str], corpus_emb: torch.Tensor) -> Retrieved:
    """Nearest corpus sentence (centred cosine) of each centred target."""
    sim = cosine_matrix(targets, corpus_emb)
    best, idx = sim.max(1)
    return Retrieved(idx, best.float(), [corpus[i] for i in idx.tolist()], len(corpus))


def corpus_words(texts: list[str], limit: int | None = 30000) -> list[str]:
    """Distinct lower-cased words of a corpus, most frequent first (ties: first seen), at most `limit`.

    Words the tokenizer splits into pieces stay: names and rare content words ("schepisi",
    "molehill") carry most of a sentence's meaning, and the search embeds whole strings anyway.
    Measured on 10 SST-2 members (MiniLM): token F1 0.37 with only single-token words, 0.47 with all.
    """
    counts = Counter(w for s in texts for w in s.lower().split() if WORD.match(w))
    words = [w for w, _ in counts.most_common()]
    return words[:limit] if limit else words


def word_vocabulary(tokenizer, limit: int | None = None) -> list[str]:
    """Whole words (and plain punctuation) of a WordPiece/BPE vocabulary, specials and pieces left out."""
    vocab = tokenizer.get_vocab()
    special = set(getattr(tokenizer, "all_special_tokens", []))
    words = [w for w, _ in sorted(vocab.items(), key=lambda kv: kv[1]) if w not in special and WORD.match(w)]
    return words[:limit] if limit else words


@dataclass
class BigramLM:
    """Word bigram model of a public corpus (interpolated with the unigram, add-0.1 smoothed): a
    fluency prior for the word search. Scores are mean log-probabilities per word, end included."""

    uni: Counter
    bi: Counter
    total: int
    mix: float = 0.6  # weight of the bigram estimate

    @classmethod
    def fit(cls, texts: list[str]) -> BigramLM:
        uni, bi = Counter(), Counter()
        for s in texts:
            w = ["<s>", *s.lower().split(), "</s>"]
            uni.update(w)
            bi.update(pairwise(w))
        return cls(uni, bi, sum(uni.values()))

    def logprob(self, prev: str, word: str) -> float:
        pu = (self.uni[word] + 0.1) / (self.total + 0.1 * len(self.uni))
        n = self.uni[prev]
        return math.log(self.mix * self.bi[(prev, word)] / n + (1 - self.mix) * pu if n else pu)

    def score(self, words: tuple[str, ...]) -> float:
        w = ["<s>", *words, "</s>"]
        return sum(self.logprob(a, b) for a, b in pairwise(w)) / (len(w) - 1)


# Frequent English function words and punctuation: single-word similarity never shortlists them,
# yet most sentences are full of them. Only those the vocabulary has are used.
FUNCTION_WORDS = (
    "the a an , . and of to is it 's that in as with for but this its be are was on by at not "
    "n't no one all so than more too who what there have has his her their from or if about"
).split()


@dataclass
class WordSearch:
    """Greedy growth (append the best shortlisted word, `beam` sequences kept), then local search
    (move, delete or replace one word; with `insert`, add one anywhere when none of those improves) while the
    objective improves by more than `tol`. The growth
    picks words by the objective and, with `grow_on="cosine"` (the default), goes on while some longer
    sequence raises the plain cosine by more than `tol`; with "objective", while the objective rises.
    The priors' terms are means over a sequence's words, so a rare (content) word lowers them: judged
    on the objective, growth could stop on a few function words or run on to `max_words` on small
    gains of the priors; judged on the cosine it gave the same or better token F1 in about half the
    time (docs/evidence.md, "Growth judged on the cosine").

    The objective is the cosine to the target, plus `fluency` x the mean word log-probability under
    `lm` (a bigram model of a public corpus), plus `prior_weight` x the mean log-probability of the
    sequence's words under `prior` (a word classifier of the target's embedding, word_prior.py), each
    when given; the cosine returned is the plain one. The prior's `prior_top` words join the
    candidate words.
    """

    space: EmbedSpace
    shortlist: int = 32
    beam: int = 2
    max_words: int = 24
    passes: int = 10
    tol: float = 1e-3
    vocab_limit: int | None = None
    words: list[str] | None = None  # the vocabulary; default: the tokenizer's whole words
    lm: BigramLM | None = None
    fluency: float = 0.0
    prior: WordPrior | None = None
    prior_weight: float = 0.0
    prior_top: int = 24
    grow_on: Literal["cosine", "objective"] = "cosine"  # what must rise by `tol` for the growth to go on
    insert: bool = False  # local search may also insert a candidate word at any position
    _vocab: list[str] = field(default_factory=list, init=False)
    _vocab_emb: torch.Tensor | None = field(default=None, init=False)

    def vocabulary(self, progress: bool = False) -> tuple[list[str], torch.Tensor]:
        """The candidate words and their embeddings (embedded once: thousands of words, seconds on a CPU)."""
        if self._vocab_emb is None:
            self._vocab = self.words or word_vocabulary(self.space.backbone.processor, self.vocab_limit)
            self._vocab_emb = self.space.embed(self._vocab, cached=True, progress=progress)
        return self._vocab, self._vocab_emb

    def _cosine(self, t: torch.Tensor, seqs: list[tuple[str, ...]]) -> torch.Tensor:
        return cosine_matrix(t, self.space.embed([" ".join(c) for c in seqs]))[0]

    def _score(self, t: torch.Tensor, seqs: list[tuple[str, ...]], logp: dict[str, float] | None = None) -> torch.Tensor:
        return self._scores(t, seqs, logp)[0]

    def _scores(self, t: torch.Tensor, seqs: list[tuple[str, ...]], logp: dict[str, float] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(objective, plain cosine) of each sequence."""
        cos = self._cosine(t, seqs)
        score = cos
        if self.lm is not None and self.fluency:
            score = score + self.fluency * torch.tensor([self.lm.score(s) for s in seqs], dtype=score.dtype)
        if logp is not None and self.prior_weight:
            score = score + self.prior_weight * torch.tensor([WordPrior.score(logp, s) for s in seqs], dtype=score.dtype)
        return score, cos

    def invert(self, target: torch.Tensor, extra: Sequence[str] = ()) -> tuple[str, float, int]:
        """(text, cosine, sequences evaluated) for one centred target (d,); `extra` words join its candidates
        (the relaxed sentence's, relaxed.py)."""
        vocab, vemb = self.vocabulary()
        t = target.view(1, -1).float()
        short = cosine_matrix(t, vemb)[0].topk(min(self.shortlist, len(vocab))).indices.tolist()
        have = set(vocab)
        logp = self.prior.logp(t[0]) if self.prior is not None and self.prior_weight else None
        guessed = self.prior.top(logp, self.prior_top) if logp is not None else []
        words = list(dict.fromkeys([vocab[i] for i in short] + [w for w in [*FUNCTION_WORDS, *guessed] if w in have] + list(extra)))
        beams: list[tuple[float, tuple[str, ...]]] = [(-1.0, ())]
        best, evaluated, best_cos = beams[0], 0, -1.0
        for _ in range(self.max_words):  # growth
            cand = list(dict.fromkeys(seq + (w,) for _, seq in beams for w in words))
            scores, cos = self._scores(t, cand, logp)
            evaluated += len(cand)
            top = scores.topk(min(self.beam, len(cand)))
            beams = [(float(s), cand[i]) for s, i in zip(top.values.tolist(), top.indices.tolist())]
            if self.grow_on == "cosine":  # words chosen by the objective, growth judged by the cosine alone
                if float(cos.max()) < best_cos + self.tol:
                    break
                best_cos, best = float(cos.max()), beams[0]
                continue
            if beams[0][0] < best[0] + self.tol:
                break
            best = beams[0]
        for _ in range(self.passes):  # local search: move, delete, replace one word (then insert one, if asked)
            score, seq = best
            found = None
            for step in (self._edits, self._insertions) if self.insert else (self._edits,):
                cand = step(seq, words)
                if not cand:
                    continue
                scores = self._score(t, cand, logp)
                evaluated += len(cand)
                j = int(scores.argmax())
                if float(scores[j]) >= score + self.tol:
                    found = (float(scores[j]), cand[j])
                    break
            if found is None:
                break
            best = found
        cos = float(self._cosine(t, [best[1]])[0]) if best[1] else -1.0
        return " ".join(best[1]), cos, evaluated

    def _edits(self, seq: tuple[str, ...], words: list[str]) -> list[tuple[str, ...]]:
        """Sequences one move, deletion or replacement of a word away from `seq`, in sorted order."""
        n, cand = len(seq), set()
        for i in range(n):
            rest = seq[:i] + seq[i + 1 :]
            if rest:
                cand.add(rest)
            cand.update(rest[:j] + (seq[i],) + rest[j:] for j in range(n) if j != i)
            cand.update(seq[:i] + (w,) + seq[i + 1 :] for w in words if w != seq[i])
        return sorted(cand)

    def _insertions(self, seq: tuple[str, ...], words: list[str]) -> list[tuple[str, ...]]:
        """Sequences with one of `words` inserted anywhere in `seq` (none at `max_words`), in sorted order."""
        if len(seq) >= self.max_words:
            return []
        return sorted({seq[:i] + (w,) + seq[i:] for i in range(len(seq) + 1) for w in words})

    def invert_all(self, targets: torch.Tensor) -> tuple[list[str], torch.Tensor, list[float]]:
        texts, cos, secs = [], [], []
        for t in targets:
            t0 = time.perf_counter()
            s, c, _ = self.invert(t)
            texts.append(s)
            cos.append(c)
            secs.append(time.perf_counter() - t0)
        return texts, torch.tensor(cos), secs
