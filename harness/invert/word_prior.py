"""A learned word prior for the word search: which words does a sentence with this embedding hold?

A linear multi-label classifier from the attack space to the words of a public corpus, trained on
that corpus's own embeddings (Song & Raghunathan 2020 recover the word set of a sentence from its
embedding the same way). No member is involved: the corpus is public, and the pipeline leaves the
member sentences out of it. For a target it gives log p(word in the sentence | embedding); the
search adds the mean of it over a sequence's words to its objective, and draws candidate words
from its top as well as from the nearest single-word embeddings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from harness.progress import bar as progress_bar

FLOOR = math.log(1e-4)  # log-probability of a word the prior does not know


@dataclass
class WordPrior:
    words: list[str]
    weight: torch.Tensor  # (V, d)
    bias: torch.Tensor  # (V,)
    scale: float  # inputs are multiplied by this (1 / the corpus's mean norm)
    epochs: int
    train_loss: float

    @classmethod
    def fit(
        cls,
        texts: list[str],
        emb: torch.Tensor,
        words: list[str],
        epochs: int = 40,
        lr: float = 3e-3,
        batch: int = 256,
        seed: int = 0,
        progress: bool = False,
    ) -> WordPrior:
        """Train on (embedding, word set) pairs of a corpus: texts (n,), emb (n, d) in the attack space."""
        if len(texts) != len(emb):
            raise ValueError(f"{len(texts)} texts but {len(emb)} embeddings")
        index = {w: i for i, w in enumerate(words)}
        held = [sorted({index[w] for w in t.lower().split() if w in index}) for t in texts]
        x = emb.float()
        scale = float(1.0 / x.norm(dim=1).mean().clamp_min(1e-12))
        gen = torch.Generator().manual_seed(seed)
        lin = torch.nn.Linear(x.shape[1], len(words))
        with torch.no_grad():  # start at each word's corpus frequency
            counts = torch.zeros(len(words))
            for h in held:
                counts[h] += 1
            freq = (counts / max(len(texts), 1)).clamp(1e-5, 1 - 1e-5)
            lin.weight.mul_(0.01)
            lin.bias.copy_(torch.log(freq / (1 - freq)))
        opt = torch.optim.Adam(lin.parameters(), lr=lr)
        loss = torch.tensor(float("nan"))
        with progress_bar(total=epochs, desc="word prior", unit="epoch", disable=not progress) as bar:
            for _ in range(epochs):
                for b in torch.randperm(len(texts), generator=gen).split(batch):
                    y = torch.zeros(len(b), len(words))
                    for r, i in enumerate(b.tolist()):
                        y[r, held[i]] = 1.0
                    loss = torch.nn.functional.binary_cross_entropy_with_logits(lin(x[b] * scale), y)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                bar.update(1)
        return cls(list(words), lin.weight.detach(), lin.bias.detach(), scale, epochs, float(loss.detach()))

    @torch.no_grad()
    def logp(self, target: torch.Tensor) -> dict[str, float]:
        """log p(word in the sentence) of every known word, for one target (d,)."""
        z = target.float().view(-1) * self.scale @ self.weight.T + self.bias
        return dict(zip(self.words, torch.nn.functional.logsigmoid(z).tolist()))

    def top(self, logp: dict[str, float], k: int) -> list[str]:
        return sorted(logp, key=logp.get, reverse=True)[:k]

    @staticmethod
    def score(logp: dict[str, float], words: tuple[str, ...]) -> float:
        """Mean log-probability of a sequence's words (unknown words at FLOOR)."""
        return sum(logp.get(w, FLOOR) for w in words) / max(len(words), 1)
