"""Text and image metrics of an inversion against its matched member."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np

_TOKEN = re.compile(r"\w+|[^\w\s]")


def tokens(s: str) -> list[str]:
    return _TOKEN.findall(s.lower())


def token_f1(pred: str, ref: str) -> float:
    """Bag-of-tokens F1 over lower-cased words and punctuation marks. Not SQuAD's normalised F1: punctuation and
    articles count as tokens here (SQuAD drops them, which gives lower figures: 0.34 against 0.43 on one
    quickstart inversion); `content_tokens` gives the F1 of content words alone."""
    return _f1(tokens(pred), tokens(ref))


def content_tokens(s: str) -> list[str]:
    """The words of `s` that carry content: alphabetic, two letters or more, not an English stop word
    (scikit-learn's list). Token F1 counts 'the', ',' and '.'; this does not."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return [t for t in tokens(s) if t.isalpha() and len(t) > 1 and t not in ENGLISH_STOP_WORDS]


def _f1(p: list[str], r: list[str]) -> float:
    if not p or not r:
        return float(p == r)
    common = sum((Counter(p) & Counter(r)).values())
    if common == 0:
        return 0.0
    prec, rec = common / len(p), common / len(r)
    return 2 * prec * rec / (prec + rec)


def content_f1(pred: str, ref: str) -> float:
    """Bag-of-words F1 over content words only (see content_tokens)."""
    return _f1(content_tokens(pred), content_tokens(ref))


def bleu(pred: str, ref: str) -> float:
    """Sentence BLEU (sacrebleu, exponential smoothing), 0-100."""
    import sacrebleu

    return float(sacrebleu.sentence_bleu(pred, [ref]).score)


def exact(pred: str, ref: str) -> bool:
    return " ".join(tokens(pred)) == " ".join(tokens(ref))


def text_metrics(pred: str, ref: str) -> dict:
    return {"token_f1": token_f1(pred, ref), "content_f1": content_f1(pred, ref), "bleu": bleu(pred, ref), "exact": exact(pred, ref)}


def image_metrics(pred: np.ndarray, ref: np.ndarray) -> dict:
    """pred, ref: (H, W, C) float in [0, 1]. SSIM (scikit-image, 7x7) and PSNR (dB), both images min-max scaled
    per image first: the published normalisation the pixel scoring applies (harness/scoring/pixels.py), so an
    inversion and a candidate of the same image score alike (a member's own pixels score SSIM 1)."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    pred, ref = _min_max(pred), _min_max(ref)
    ssim = structural_similarity(ref, pred, channel_axis=-1, data_range=1.0)
    psnr = peak_signal_noise_ratio(ref, pred, data_range=1.0)
    return {"ssim": float(ssim), "psnr": float(min(psnr, 100.0))}


def _min_max(img: np.ndarray) -> np.ndarray:
    lo, hi = float(img.min()), float(img.max())
    return ((img - lo) / max(hi - lo, 1e-12)).astype(np.float64)
