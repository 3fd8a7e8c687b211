"""A word source for the word search: the target's sentence relaxed to soft tokens and optimised through
the backbone (white-box, as in Song & Raghunathan 2020).

Each of `length` positions holds a softmax over the tokenizer's whole words; the mixed token embeddings
go through the backbone between its own special tokens, are pooled as the card pools them, then
normalised and centred as the attack space is, and Adam raises the cosine to the target while the
softmax's temperature anneals from 1 to `final_temperature`. The `top` words of each position are what
it offers the search (with several lengths, one sentence per length, their words joined): words chosen
in each other's context, where the single-word shortlist judges every word alone. No corpus and no member is involved: only the backbone and the target.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from harness.invert.space import EmbedSpace

POOLINGS = ("mean", "cls", "pooler")  # pooled from the model's own outputs; clip and classifier cards are not


def relaxable(space: EmbedSpace) -> bool:
    """Whether the backbone can be driven by soft tokens: a text encoder pooled from its own outputs."""
    bb = space.backbone
    return bb.card.modality == "text" and bb.classifier is None and bb.card.pooling in POOLINGS


@dataclass
class RelaxedWords:
    space: EmbedSpace
    steps: int = 300
    length: int | Sequence[int] = 20  # several lengths: one sentence each, their words joined
    top: int = 2
    lr: float = 0.1
    final_temperature: float = 0.05
    seed: int = 0
    _inputs: tuple | None = field(default=None, init=False)  # (word rows, before, after, words), built once

    def _prepared(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[str]]:
        """The input-embedding rows of the tokenizer's whole words and of the special tokens it puts before
        and after a single sequence ([CLS] / [SEP], <s> / </s>), on the backbone's device, and the words."""
        if self._inputs is None:
            from harness.invert.text import word_vocabulary

            bb = self.space.backbone
            tok = bb.processor
            words = [w for w in word_vocabulary(tok) if w.isalpha()]
            plain = tok("a", add_special_tokens=False)["input_ids"]
            full = tok("a")["input_ids"]
            at = next(i for i in range(len(full)) if full[i : i + len(plain)] == plain)
            table = bb.model.get_input_embeddings().weight.detach()
            rows = lambda ids: table[torch.tensor(ids, dtype=torch.long, device=table.device)]  # noqa: E731
            self._inputs = (rows(tok.convert_tokens_to_ids(words)), rows(full[:at]), rows(full[at + len(plain) :]), words)
        return self._inputs

    def words(self, target: torch.Tensor) -> tuple[list[str], float | None]:
        """(words offered, best cosine of the relaxed sentences) for one target (d,) in the attack space;
        ([], None) when off or when the backbone cannot take soft tokens. With several lengths, the words of
        every length's sentence, the shorter sentences' first."""
        if self.steps == 0 or not relaxable(self.space):
            return [], None
        lengths = [self.length] if isinstance(self.length, int) else list(self.length)
        found = [self._relax(target, n) for n in sorted(lengths)]
        return list(dict.fromkeys(w for words, _ in found for w in words)), max(cos for _, cos in found)

    def _relax(self, target: torch.Tensor, length: int) -> tuple[list[str], float]:
        """One sentence of `length` soft tokens: its positions' likeliest words and its best cosine."""
        bb = self.space.backbone
        words_emb, before, after, vocab = self._prepared()
        length = max(1, min(length, bb.max_length - len(before) - len(after)))  # within the model's position table
        dev = words_emb.device
        tgt = torch.nn.functional.normalize(target.float().to(dev), dim=0)
        gen = torch.Generator().manual_seed(self.seed)
        logits = (0.01 * torch.randn(length, len(vocab), generator=gen)).to(dev).requires_grad_(True)
        opt = torch.optim.Adam([logits], lr=self.lr)
        best = torch.tensor(-1.0, device=dev)
        with torch.enable_grad():
            for s in range(self.steps):
                temp = self.final_temperature ** (s / self.steps)
                soft = torch.softmax(logits / temp, dim=1).to(words_emb.dtype) @ words_emb
                x = torch.cat([before, soft, after])[None]
                e = self.space.centre(bb.pool(bb.model(inputs_embeds=x), None))[0]
                cos = torch.dot(torch.nn.functional.normalize(e, dim=0), tgt)
                # the gradient in the logits alone: the backbone's weights get none (and keep their flags)
                (logits.grad,) = torch.autograd.grad(-cos, logits)
                opt.step()
                best = torch.maximum(best, cos.detach())
        top = logits.detach().topk(min(self.top, len(vocab)), dim=1).indices.cpu()
        # position by position, each position's likeliest word first
        return list(dict.fromkeys(vocab[i] for i in top.T.flatten().tolist())), round(float(best), 4)
