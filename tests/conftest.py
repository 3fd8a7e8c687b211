"""Shared fixtures: no network, an isolated Hugging Face home, tiny models built on the spot."""

from __future__ import annotations

import os
import tempfile

# Before anything imports huggingface_hub / datasets: offline, and a private HF home per session.
_HF_HOME = tempfile.mkdtemp(prefix="rh-hf-home-")
os.environ["HF_HOME"] = _HF_HOME
for _var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_DATASETS_CACHE", "TRANSFORMERS_CACHE", "HF_TOKEN_PATH"):
    os.environ.pop(_var, None)  # a user's own settings would point past the private home (they win over HF_HOME)
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
# the embedding cache and internal-error logs of the tests: not the user's own
os.environ["RECON_HARNESS_CACHE"] = tempfile.mkdtemp(prefix="rh-cache-")
os.environ["RECON_HARNESS_LOGS"] = tempfile.mkdtemp(prefix="rh-logs-")

import shutil  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from tests.tiny_models import (  # noqa: E402
    build_tiny_bert, build_tiny_clip, build_tiny_distilbert, build_tiny_vit, install_in_hub_cache,
)

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
SST2 = FIXTURES / "sst2-train-400.parquet"
CIFAR = FIXTURES / "cifar10-test-300.parquet"


@pytest.fixture(autouse=True)
def _seeded_global_rngs():
    """Every test starts from the same global random state, whatever ran before it (order, -k, a single file)."""
    import random

    import numpy as np
    import torch

    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture(scope="module")
def one_torch_thread():
    """For a module of tiny tensors: one torch thread is faster, and steady on a shared machine
    (`pytestmark = pytest.mark.usefixtures("one_torch_thread")`)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def hf_home() -> Path:
    return Path(_HF_HOME)


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory) -> Path:
    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture
def bert_card(tmp_path, tiny_bert_dir) -> Path:
    """A model card of the tiny BERT (mean pooling, normalised), as a user's local card."""
    import yaml

    p = tmp_path / "tiny-bert.yaml"
    p.write_text(yaml.safe_dump({"id": str(tiny_bert_dir), "modality": "text", "pooling": "mean", "normalize": True}))
    return p


@pytest.fixture(scope="session")
def tiny_distilbert_dir(tmp_path_factory) -> Path:
    return build_tiny_distilbert(tmp_path_factory.mktemp("tiny-distilbert"))


@pytest.fixture(scope="session")
def tiny_vit_dir(tmp_path_factory) -> Path:
    return build_tiny_vit(tmp_path_factory.mktemp("tiny-vit"))


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory) -> Path:
    return build_tiny_clip(tmp_path_factory.mktemp("tiny-clip"))


@pytest.fixture
def hub_repo(hf_home):
    """install(src_dir, 'org/name') -> revision; lays src_dir out as a Hub cache entry."""
    made = []

    def install(src: Path, repo_id: str, revision: str | None = None) -> str:
        rev, repo = install_in_hub_cache(src, repo_id, hf_home / "hub", revision)
        made.append(repo)
        return rev

    yield install
    for repo in made:
        shutil.rmtree(repo, ignore_errors=True)


@pytest.fixture
def cache_dir(tmp_path) -> Path:
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def one_thread():
    """Tiny tensors: one torch thread is faster and steady on a shared box (use with pytestmark)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
