"""Tiny random transformers models (BERT, ViT, CLIP) saved like real checkpoints, and a Hub-cache layout."""

from __future__ import annotations

import hashlib
import shutil
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def _wordpiece_tokenizer(words: list[str]):
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import BertTokenizerFast

    vocab = {w: i for i, w in enumerate(SPECIAL + words)}
    tok = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    tok.decoder = decoders.WordPiece()
    return BertTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]"
    )


def fixture_words(n: int = 400) -> list[str]:
    table = pq.read_table(Path(__file__).parent / "fixtures" / "sst2-train-400.parquet", columns=["sentence"])
    counts = Counter(w for s in table.column("sentence").to_pylist() for w in s.lower().split())
    return [w for w, _ in counts.most_common(n)]


def build_tiny_bert(out: Path) -> Path:
    import torch
    from transformers import BertConfig, BertModel

    tok = _wordpiece_tokenizer(fixture_words())
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, max_position_embeddings=64)
    BertModel(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def build_tiny_distilbert(out: Path) -> Path:
    """A DistilBERT backbone (DistilBertModel) with a WordPiece tokenizer that gives no token_type_ids."""
    import torch
    from transformers import DistilBertConfig, DistilBertModel

    tok = _wordpiece_tokenizer(fixture_words())
    tok.model_input_names = ["input_ids", "attention_mask"]
    torch.manual_seed(0)
    cfg = DistilBertConfig(vocab_size=len(tok), dim=32, n_layers=2, n_heads=2, hidden_dim=64, max_position_embeddings=64)
    DistilBertModel(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def build_tiny_text_classifier(out: Path, family: str) -> Path:
    """A randomly initialised BERT / RoBERTa / GPT-2 sequence classifier (2 labels) with a tokenizer."""
    import torch
    import transformers

    tok = _wordpiece_tokenizer(fixture_words())
    small = dict(num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, max_position_embeddings=72)
    torch.manual_seed(0)
    if family == "bert":
        model = transformers.BertForSequenceClassification(transformers.BertConfig(vocab_size=len(tok), hidden_size=32, **small))
    elif family == "roberta":
        model = transformers.RobertaForSequenceClassification(
            transformers.RobertaConfig(vocab_size=len(tok), hidden_size=32, pad_token_id=0, **small))
    else:
        model = transformers.GPT2ForSequenceClassification(
            transformers.GPT2Config(vocab_size=len(tok), n_embd=32, n_layer=2, n_head=2, pad_token_id=0))
    model.config.id2label, model.config.label2id = {0: "negative", 1: "positive"}, {"negative": 0, "positive": 1}
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def build_tiny_vit(out: Path) -> Path:
    import torch
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    torch.manual_seed(0)
    cfg = ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, image_size=32, patch_size=8)
    ViTModel(cfg, add_pooling_layer=False).save_pretrained(out)
    ViTImageProcessor(size={"height": 32, "width": 32}, do_resize=True).save_pretrained(out)
    return out


def build_tiny_clip(out: Path) -> Path:
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    tok = _wordpiece_tokenizer(fixture_words(200))
    torch.manual_seed(0)
    cfg = CLIPConfig(
        text_config=dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, vocab_size=len(tok), max_position_embeddings=64, bos_token_id=2, eos_token_id=3, pad_token_id=0),
        vision_config=dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, image_size=32, patch_size=8),
        projection_dim=16,
    )
    CLIPModel(cfg).save_pretrained(out)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def install_in_hub_cache(src: Path, repo_id: str, hub_cache: Path, revision: str | None = None) -> tuple[str, Path]:
    """Lay `src` out as the Hub cache does: refs/main -> <rev>, snapshots/<rev>/<files>."""
    rev = revision or hashlib.sha1(repo_id.encode() + b"rev").hexdigest()
    repo = hub_cache / ("models--" + repo_id.replace("/", "--"))
    snap = repo / "snapshots" / rev
    snap.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        if f.is_file():
            shutil.copy2(f, snap / f.name)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(rev)
    return rev, repo
