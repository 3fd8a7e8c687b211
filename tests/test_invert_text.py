"""Text inversion: retrieval finds the member when it is in the corpus; word search climbs cosine; metrics."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from harness.backbones.load import load_backbone
from harness.backbones.resolve import resolve_model
from harness.errors import HarnessError
from harness.invert.corpus import load_corpus
from harness.invert.metrics import bleu, exact, text_metrics, token_f1
from harness.invert.space import EmbedSpace
from harness.invert.text import WordSearch, retrieve, word_vocabulary
from harness.scoring.embedding import cosine_matrix
from harness.specs.model_card import ModelCard
from tests.conftest import SST2


@pytest.fixture(scope="module")
def space(tiny_bert_dir, tmp_path_factory):
    card = ModelCard(name="tiny-bert", id=str(tiny_bert_dir), modality="text", pooling="mean", normalize=True)
    bb = load_backbone(resolve_model(card), device=torch.device("cpu"))
    sents = pq.read_table(SST2, columns=["sentence"]).column("sentence").to_pylist()
    raw = torch.nn.functional.normalize(bb.embed(sents[:20], progress=False), dim=1)
    return EmbedSpace(bb, True, raw.mean(0), tmp_path_factory.mktemp("cache"))


def test_metrics_by_hand():
    assert token_f1("the cat sat", "the cat sat") == 1.0
    assert token_f1("the dog", "the cat sat .") == pytest.approx(2 * 0.5 * 0.25 / 0.75)
    assert token_f1("", "x") == 0.0 and token_f1("a b", "c d") == 0.0
    assert bleu("a fine , moving film .", "a fine , moving film .") == pytest.approx(100.0)
    assert bleu("completely different words here", "a fine , moving film .") < 10
    assert exact("A  fine film .", "a fine film .") and not exact("a fine film", "a fine film .")
    assert text_metrics("fine film", "fine film today") == {
        "token_f1": pytest.approx(0.8), "content_f1": pytest.approx(0.8), "bleu": pytest.approx(bleu("fine film", "fine film today")),
        "exact": False,
    }


def test_content_f1_leaves_out_stop_words_and_punctuation():
    from harness.invert.metrics import content_f1, content_tokens

    assert content_tokens("The film , is n't a moving film .") == ["film", "moving", "film"]
    # the function words match, the content does not: token F1 is high, content F1 is zero
    assert token_f1("the , of a .", "the film of a boy .") > 0.7 and content_f1("the , of a .", "the film of a boy .") == 0.0
    assert content_f1("moving boy film", "the film of a moving boy .") == 1.0


def test_retrieval_returns_the_member_when_it_is_in_the_corpus(space):
    corpus = load_corpus(str(SST2))
    assert len(corpus) == len(set(corpus)) > 300
    cemb = space.embed(corpus, cached=True)
    members = corpus[100:110]
    g = torch.Generator().manual_seed(0)
    targets = space.embed(members)
    noisy = targets + 0.05 * targets.norm(dim=1, keepdim=True) * torch.randn(targets.shape, generator=g) / targets.shape[1] ** 0.5
    got = retrieve(noisy, corpus, cemb)
    assert got.texts == members and (got.cosine > 0.95).all()
    # without the members in the corpus, retrieval can only return other sentences
    rest = [s for s in corpus if s not in members]
    other = retrieve(noisy, rest, space.embed(rest, cached=True))
    assert not set(other.texts) & set(members)
    assert float(other.cosine.mean()) < float(got.cosine.mean())


def test_word_search_climbs_above_any_single_word(space):
    vocab = word_vocabulary(space.backbone.processor)
    assert "the" in vocab and not any(w.startswith("##") or w.startswith("[") for w in vocab)
    target = space.embed(["the film is a charming comedy"])[0]
    ws = WordSearch(space, shortlist=16, beam=1, max_words=8, passes=1)
    text, cos, evaluated = ws.invert(target)
    _, vemb = ws.vocabulary()
    best_single = float(cosine_matrix(target.view(1, -1), vemb).max())
    again = float(cosine_matrix(target.view(1, -1), space.embed([text]))[0, 0])
    assert cos == pytest.approx(again, abs=1e-4)  # the reported cosine is the text's real cosine
    assert cos > best_single + 0.1 and cos > 0.75 and 0 < evaluated < 5000
    assert 1 <= len(text.split()) <= 8


def test_corpus_bad_input(tmp_path):
    txt = tmp_path / "c.txt"
    txt.write_text("one line\n\nanother line\none line\n")
    assert load_corpus(str(txt)) == ["one line", "another line"]
    with pytest.raises(HarnessError, match="not be loaded") as e:
        load_corpus("nobody/not-a-cached-dataset")
    assert "\n" not in str(e.value)
    with pytest.raises(HarnessError, match="no such file"):
        load_corpus(str(tmp_path / "missing.parquet"))
    with pytest.raises(HarnessError, match="no such column"):
        load_corpus(f"{SST2}:text")
    nums = tmp_path / "n.parquet"
    pq.write_table(pa.table({"x": [1, 2]}), nums)
    with pytest.raises(HarnessError, match="no text column"):
        load_corpus(str(nums))


def test_target_dimension_must_match_the_backbone(space):
    with pytest.raises(HarnessError, match="32-d"):
        space.check_targets(torch.zeros(3, 384))


def test_corpus_vocabulary_is_every_word_most_frequent_first():
    from harness.invert.text import corpus_words

    words = corpus_words(["The film , the FILM schepisi !", "a film is n't 3d"])
    assert words[:2] == ["film", "the"] and len(words) == len(set(words))
    assert "schepisi" in words and "n't" in words and "3d" not in words  # split words stay; non-words go
    assert corpus_words(["a b c a"], limit=1) == ["a"]


def test_word_corpus_leaves_member_sentences_out_unless_asked():
    import numpy as np

    from harness.data.split import MemberSplit
    from harness.invert.recipe import EvidenceRecipe
    from harness.invert.targets import word_corpus

    split = MemberSplit(["neg", "pos"], ["A moving film .", "dull"], np.array([1, 0]), np.array([0, 1]),
                        ["a fine film ."], np.array([1]), np.array([2]))
    corpus = ["a fine film .", "a moving film .", "this dull , dull movie", "a moving film . and more", "moving", "dullness"]
    kept = word_corpus(corpus, split, EvidenceRecipe())
    # the member itself, sentences holding a member and sentences a member holds go (whole words only)
    assert [corpus[i] for i in kept] == ["a fine film .", "dullness"]
    assert word_corpus(corpus, split, EvidenceRecipe(word_members_out=False)) == list(range(len(corpus)))


def test_bigram_lm_prefers_corpus_word_order():
    from harness.invert.text import BigramLM

    lm = BigramLM.fit(["a moving film .", "a fine film .", "the film is dull ."])
    assert lm.score(("a", "moving", "film", ".")) > lm.score(("film", "a", ".", "moving"))
    assert lm.score(("unseen", "words")) < lm.score(("a", "film"))  # unseen words get the smoothed floor


def test_fluency_keeps_the_returned_cosine_plain(space):
    from harness.invert.text import BigramLM

    vocab = word_vocabulary(space.backbone.processor)[:200]
    target = space.embed([" ".join(vocab[5:9])])[0]
    lm = BigramLM.fit([" ".join(vocab[i : i + 4]) for i in range(0, 200, 4)])
    text, cos, _ = WordSearch(space, shortlist=8, beam=1, max_words=6, passes=1, words=vocab, lm=lm, fluency=0.05).invert(target)
    plain = float(torch.nn.functional.cosine_similarity(space.embed([text]), target.view(1, -1))[0])
    assert cos == pytest.approx(plain, abs=1e-5)


def test_word_prior_learns_which_words_a_sentence_holds(space):
    from harness.invert.text import corpus_words
    from harness.invert.word_prior import FLOOR, WordPrior

    vocab = word_vocabulary(space.backbone.processor)[20:140]
    g = torch.Generator().manual_seed(0)
    texts = [" ".join(vocab[j] for j in torch.randperm(len(vocab), generator=g)[:6].tolist()) for _ in range(200)]
    emb = space.embed(texts)
    prior = WordPrior.fit(texts, emb, corpus_words(texts), epochs=60, lr=1e-2)
    # on held-out sentences, a sentence's own words rank above the rest
    test = [" ".join(vocab[j] for j in torch.randperm(len(vocab), generator=g)[:6].tolist()) for _ in range(20)]
    hits = 0
    for t, e in zip(test, space.embed(test)):
        lp = prior.logp(e)
        hits += len(set(prior.top(lp, 6)) & set(t.split()))
    assert hits / (6 * len(test)) > 0.15  # chance: 6 / 120 = 0.05 (measured 0.26 on this tiny random model)
    assert WordPrior.score({"a": -1.0}, ("a", "zzz")) == (-1.0 + FLOOR) / 2


def test_word_search_with_a_prior_reports_the_plain_cosine(space):
    from harness.invert.word_prior import WordPrior

    vocab = word_vocabulary(space.backbone.processor)[:200]
    texts = [" ".join(vocab[i : i + 4]) for i in range(0, 200, 4)]
    prior = WordPrior.fit(texts, space.embed(texts), vocab, epochs=5)
    target = space.embed([texts[3]])[0]
    ws = WordSearch(space, shortlist=8, beam=1, max_words=6, passes=1, words=vocab, prior=prior, prior_weight=0.05)
    text, cos, _ = ws.invert(target)
    plain = float(torch.nn.functional.cosine_similarity(space.embed([text]), target.view(1, -1))[0])
    assert cos == pytest.approx(plain, abs=1e-5)


def test_relaxed_sentence_offers_the_words_of_its_target(space):
    """The relaxed sentence climbs to its target through the backbone and offers words in context: on a
    sentence of rare vocabulary words, more of them than the single-word shortlist of the same size."""
    from harness.invert.relaxed import RelaxedWords

    vocab = [w for w in word_vocabulary(space.backbone.processor) if w.isalpha()]
    sentence = vocab[220:226]
    target = space.embed([" ".join(sentence)])[0]
    relax = RelaxedWords(space, steps=150, length=6, top=2)
    grads = [p.requires_grad for p in space.backbone.model.parameters()]
    words, cos = relax.words(target)
    assert [p.requires_grad for p in space.backbone.model.parameters()] == grads  # the backbone is left as it was
    assert 0 < len(words) <= 12 and set(words) <= set(vocab)
    assert cos > 0.9  # the soft sentence reaches its target (a random start sits near 0.3 on this model)
    ws = WordSearch(space, shortlist=len(words), words=vocab)
    _, vemb = ws.vocabulary()
    short = {vocab[i] for i in cosine_matrix(target.view(1, -1), vemb)[0].topk(len(words)).indices.tolist()}
    assert len(set(words) & set(sentence)) > len(short & set(sentence))
    # offered to the search, its words raise the cosine the search reaches from a shortlist of one
    plain = WordSearch(space, shortlist=1, beam=1, max_words=8, passes=1, words=vocab).invert(target)
    helped = WordSearch(space, shortlist=1, beam=1, max_words=8, passes=1, words=vocab).invert(target, words)
    assert helped[1] > plain[1] + 0.03
    assert RelaxedWords(space, steps=0).words(target) == ([], None)
    # several lengths: one sentence each, the shorter one's words first, then the rest of the longer one's
    short_words, short_cos = RelaxedWords(space, steps=150, length=4, top=2).words(target)
    both, both_cos = RelaxedWords(space, steps=150, length=(6, 4), top=2).words(target)
    assert both == list(dict.fromkeys(short_words + words)) and both_cos == max(cos, short_cos)


def test_relaxed_sentence_is_off_for_backbones_it_cannot_drive(space):
    from dataclasses import replace

    from harness.invert.relaxed import RelaxedWords, relaxable

    assert relaxable(space)
    other = replace(space, backbone=replace(space.backbone, classifier=object()))
    assert not relaxable(other) and RelaxedWords(other).words(torch.zeros(space.dim)) == ([], None)


def test_a_word_search_is_reused_by_a_second_unit_only_under_the_same_settings(space):
    """Two units of one run (two victim recipes) invert the same member: the second takes the first's word
    search from the run's memo, row for row, and says so; another setting or another target searches anew."""
    import json

    import numpy as np

    from harness.data.split import MemberSplit
    from harness.invert.recipe import EvidenceRecipe
    from harness.invert.targets import Target, invert_text
    from harness.pipeline.stages import Embedded

    sents = pq.read_table(SST2, columns=["sentence"]).column("sentence").to_pylist()
    members, nonmembers = sents[:4], sents[20:80]
    split = MemberSplit(["a", "b"], members, np.array([0, 1, 0, 1]), np.arange(4), nonmembers, np.zeros(60, int), np.arange(20, 80))
    emb = Embedded(space.embed(members), space.embed(nonmembers), space.mean, True, False, 0.0)
    recipe = EvidenceRecipe(word_search_top=1, word_shortlist=2, word_beam=1, word_passes=0, word_prior=0.0, word_relax_steps=0)
    targets = [Target("selected", 0, 0, emb.members[1]), Target("member", 0, None, emb.members[0])]
    memo: dict = {}
    words = lambda rows: [r for r in rows if r["method"] == "word-search"]  # noqa: E731
    first = words(invert_text(space, split, emb, targets, recipe, memo=memo))
    assert len(memo) == 2 and [json.loads(r["details"])["reused"] for r in first] == [False, False]
    again = words(invert_text(space, split, emb, targets, recipe, memo=memo))
    assert [json.loads(r["details"])["reused"] for r in again] == [True, True]
    assert [(r["text"], r["cosine"], r["wall_s"], r["target_kind"]) for r in again] == [
        (r["text"], r["cosine"], r["wall_s"], r["target_kind"]) for r in first]
    other = words(invert_text(space, split, emb, targets[:1] + [Target("member", 2, None, emb.members[2])], recipe, memo=memo))
    assert [json.loads(r["details"])["reused"] for r in other] == [True, False]
    wider = words(invert_text(space, split, emb, targets, recipe.model_copy(update={"word_shortlist": 3}), memo=memo))
    assert [json.loads(r["details"])["reused"] for r in wider] == [False, False] and len(memo) == 5
    inserting = words(invert_text(space, split, emb, targets, recipe.model_copy(update={"word_insert": True}), memo=memo))
    assert [(json.loads(r["details"])["reused"], json.loads(r["details"])["insert"]) for r in inserting] == [(False, True)] * 2
    assert len(memo) == 7


@pytest.mark.parametrize("grow_on, words", [("cosine", 3), ("objective", 6)])
def test_growth_goes_on_while_what_it_is_judged_on_rises(space, monkeypatch, grow_on, words):
    """Words are chosen by the objective either way; growth stops when the judged quantity stops rising by
    `tol`: here the objective rises with every word while the cosine stops after three."""
    vocab = [w for w in word_vocabulary(space.backbone.processor) if w.isalpha()][:50]
    ws = WordSearch(space, shortlist=4, beam=1, max_words=6, passes=0, words=vocab, grow_on=grow_on)

    def scores(t, seqs, logp=None):
        n = torch.tensor([float(len(s)) for s in seqs])
        bonus = torch.tensor([0.01 * (s[-1] == vocab[0]) for s in seqs])  # the objective prefers one word
        return n + bonus, torch.clamp(n, max=3.0) / 10 + bonus / 100

    monkeypatch.setattr(ws, "_scores", scores)
    text, _, evaluated = ws.invert(space.embed(["a fine film"])[0])
    assert text.split() == [vocab[0]] * words


@pytest.mark.parametrize("insert", [False, True])
def test_local_search_inserts_a_word_the_growth_could_not_append(space, monkeypatch, insert):
    """The growth appends words only at the end and stops at (a, c); no move, deletion or replacement improves
    on it, and only inserting b in the middle reaches (a, b, c)."""
    vocab = [w for w in word_vocabulary(space.backbone.processor) if w.isalpha()][:30]
    a, b, c = vocab[:3]
    value = {(a,): 0.3, (a, c): 0.5, (a, b, c): 1.0}
    ws = WordSearch(space, shortlist=4, beam=1, max_words=6, passes=3, words=vocab, grow_on="objective", insert=insert)

    def scores(t, seqs, logp=None):
        s = torch.tensor([value.get(tuple(q), 0.0) for q in seqs])
        return s, s

    monkeypatch.setattr(ws, "_scores", scores)
    text, _, _ = ws.invert(space.embed(["a fine film"])[0], extra=[a, b, c])
    assert text.split() == ([a, b, c] if insert else [a, c])
