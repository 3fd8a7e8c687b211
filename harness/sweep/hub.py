"""Pick models by a Hub query and pin each to its current commit, at plan time only."""

from __future__ import annotations

import re
from typing import Any

from harness.backbones.resolve import hub_offline, resolve_model
from harness.errors import HarnessError
from harness.specs.model_card import ModelCard
from harness.sweep.spec import HubQuery

SHA = re.compile(r"^[0-9a-f]{40}$")


def hf_api() -> Any:
    """The Hub client; tests replace this function (never the network)."""
    from huggingface_hub import HfApi

    return HfApi()


def _describe(q: HubQuery) -> str:
    parts = [f"{k}={v}" for k, v in q.model_dump(exclude={"card", "sort", "top_k"}).items() if v]
    return ", ".join(parts) or "(no filter)"


def query_cards(q: HubQuery, api: Any | None = None) -> list[ModelCard]:
    """Top-k models of the query as pinned cards; nothing found (or offline) is a one-line error."""
    if hub_offline():
        raise HarnessError(
            "hub", _describe(q), "a Hub query needs the network but HF_HUB_OFFLINE=1; name cards under `models`"
        )
    api = api or hf_api()
    tags = list(q.filter) + ([q.library] if q.library else [])
    try:
        found = list(
            api.list_models(
                filter=tags or None, pipeline_tag=q.pipeline_tag, author=q.author, search=q.search,
                sort=q.sort, limit=q.top_k, expand=["sha", "downloads"],
            )
        )
    except (OSError, ValueError) as exc:  # requests' errors subclass OSError
        raise HarnessError("hub", _describe(q), f"the Hub query failed ({type(exc).__name__}: {exc})") from None
    if not found:
        raise HarnessError("hub", _describe(q), "the Hub query returned no models; widen the filter")
    cards = []
    for info in found[: q.top_k]:
        sha = getattr(info, "sha", None) or api.model_info(info.id).sha
        cards.append(
            ModelCard(
                name=info.id.replace("/", "--").lower(), id=info.id, revision=sha, **q.card.model_dump(),
                licence=_licence(info),
            )
        )
    return cards


def _licence(info: Any) -> str:
    tags = getattr(info, "tags", None) or []
    return next((t.split(":", 1)[1] for t in tags if t.startswith("license:")), "unknown")


def pin_revision(card: ModelCard) -> tuple[str, str | None]:
    """(revision for the unit id, error or None), without downloading weights for a pinned card."""
    if card.is_identity:
        return "none", None
    if card.pinned:
        return card.revision, None
    local = card.id.startswith(("/", "."))
    if not local and not hub_offline():
        try:
            return hf_api().model_info(card.id, revision=card.revision).sha, None
        except (OSError, ValueError):
            pass  # unreachable or unknown: the cache (or a local package) below decides
    try:
        return resolve_model(card).revision, None
    except HarnessError as exc:
        return card.revision, exc.line()
