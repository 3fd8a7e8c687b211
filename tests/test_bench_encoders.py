"""bench/encoders.py: a data name's @ENCODER embeds its texts with another encoder through the harness's loader."""

import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import encoders  # noqa: E402
import recipes  # noqa: E402

from tests.tiny_models import build_tiny_bert  # noqa: E402


def test_a_local_encoder_embeds_unit_rows_and_its_name_parses(tmp_path):
    enc = str(build_tiny_bert(tmp_path / "tiny"))
    assert encoders.split(f"fortunes:science,politics@{enc}") == ("fortunes:science,politics", enc)
    assert encoders.split("sst2") == ("sst2", "minilm")
    assert recipes.name_error(f"sst2@{enc}") is None and recipes.name_error(f"fortunes:a,b@{enc}") is None
    rows = encoders.embed(enc, ["the film was good", "a dull and long film", "good"])
    assert rows.shape[0] == 3 and rows.dtype == torch.float32
    assert torch.allclose(rows.norm(dim=1), torch.ones(3), atol=1e-5)
    assert not torch.allclose(rows[0], rows[1])  # the texts' own embeddings, not one row repeated


def test_an_encoder_that_cannot_embed_is_named_with_the_fix(tmp_path, monkeypatch):
    monkeypatch.setattr(encoders, "DIR", tmp_path)  # mpnet not prepared here, whatever this machine holds
    assert recipes.name_error("sst2@mpnet") == (
        "'sst2@mpnet': encoder 'mpnet' is not prepared: run `python bench/encoders.py --prepare mpnet` (once)")
    assert "not a prepared encoder (minilm, mpnet) nor a directory with config.json" in recipes.name_error(
        f"sst2@{tmp_path / 'missing'}")
    assert "pixels take no encoder" in recipes.name_error("cifar:0,7@mpnet")


def test_a_prepared_encoder_gets_a_model_card_the_harness_reads(tmp_path, monkeypatch):
    from harness.registry import MODELS

    monkeypatch.setattr(encoders, "DIR", tmp_path)
    card = MODELS.get(str(encoders.write_card("all-mpnet-base-v2")))
    assert card.id == str((tmp_path / "all-mpnet-base-v2").resolve()) and card.is_local
    assert (card.modality, card.pooling, card.normalize) == ("text", "mean", True)
