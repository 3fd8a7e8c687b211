"""Content-addressed embedding cache: model id + revision + pooling + the inputs' fingerprint."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Sequence

import torch
from safetensors.torch import load_file, save_file

from harness.backbones.load import Backbone
from harness.cache_dir import default_cache_dir
from harness.errors import HarnessError


def input_fingerprint(inputs: Sequence[Any]) -> str:
    """sha256 over the inputs' content: text as UTF-8, images as mode + size + pixel bytes."""
    h = hashlib.sha256()
    for x in inputs:
        if isinstance(x, str):
            b = x.encode()
            h.update(b"T" + len(b).to_bytes(8, "little") + b)
        elif hasattr(x, "tobytes") and hasattr(x, "mode"):  # PIL image
            h.update(f"I{x.mode}{x.size}".encode() + x.tobytes())
        else:
            h.update(repr(x).encode())
    return h.hexdigest()


def cache_key(backbone: Backbone, fingerprint: str) -> str:
    card = backbone.card
    parts = {
        "id": card.id,
        "revision": backbone.resolved.revision,
        "source": backbone.resolved.source,
        "pooling": card.pooling,
        "max_length": card.max_length if card.modality == "text" else None,
        "inputs": fingerprint,
        "v": 1,
    }
    if card.modality == "image":  # pictures with transparency are composited on white (load.to_rgb) since this key
        parts["rgb"] = "on-white"
    if card.is_classifier:  # the head's inputs, not a pooled embedding
        parts["kind"] = card.kind
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]


def embed_cached(
    backbone: Backbone,
    inputs: Sequence[Any],
    cache_dir: Path | None = None,
    progress: bool = True,
    batch_size: int = 64,
) -> tuple[torch.Tensor, bool, str]:
    """(raw embeddings, cache hit?, key). A second identical call re-embeds nothing."""
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    key = cache_key(backbone, input_fingerprint(inputs))
    path = cache_dir / "embeddings" / f"{key}.safetensors"
    if path.is_file():
        try:
            return load_file(str(path))["embeddings"], True, key
        except Exception:  # a damaged cache file is recomputed, never trusted
            path.unlink(missing_ok=True)
    emb = backbone.embed(inputs, batch_size=batch_size, progress=progress).contiguous()
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)  # embeddings of the members: the owner's alone
        save_file({"embeddings": emb}, str(tmp), metadata={"model": backbone.card.id, "revision": backbone.resolved.revision})
        os.replace(tmp, path)
    except OSError as exc:
        if tmp.parent.is_dir():
            tmp.unlink(missing_ok=True)
        raise HarnessError(
            "cache", str(cache_dir), f"cannot hold the embedding cache ({exc.strerror or exc}); give a writable --cache directory"
        ) from None
    return emb, False, key
