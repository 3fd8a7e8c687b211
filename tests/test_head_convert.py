"""Heads trained elsewhere (PyTorch, scikit-learn) written as `run --head` reads them: the harness computes the same
outputs from the same embeddings as the tool that trained them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.errors import HarnessError
from harness.heads.convert import from_sklearn, from_torch
from harness.heads.io import load_head


def _outputs(path, u: np.ndarray) -> np.ndarray:
    head, _, frame = load_head(path)
    x = torch.as_tensor(u, dtype=torch.float32)
    if frame.l2:
        x = torch.nn.functional.normalize(x, dim=1)
    return head(frame.apply(x)).detach().numpy()


def test_a_scikit_learn_pipeline_gives_the_same_logits(tmp_path):
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import Normalizer, StandardScaler

    rng = np.random.default_rng(0)
    u, y = rng.normal(size=(40, 6)) * 3 + 1, np.array(["neg", "pos"] * 20)
    pipe = make_pipeline(Normalizer(), StandardScaler(), MLPClassifier(hidden_layer_sizes=(8,), max_iter=300, random_state=0)).fit(u, y)
    path = from_sklearn(pipe, tmp_path / "sk.safetensors")
    head, meta, frame = load_head(path)
    assert frame.l2 and frame.transform == "standardize" and meta["classes"] == ["neg", "pos"] and head.bias_mode == "all"
    logit = np.log(pipe.predict_proba(u)[:, 1]) - np.log(pipe.predict_proba(u)[:, 0])  # positive for classes_[1]
    assert np.allclose(_outputs(path, u)[:, 0], logit, atol=1e-4)
    three = MLPClassifier(hidden_layer_sizes=(8,), activation="tanh", max_iter=300, random_state=0).fit(u, np.arange(40) % 3)
    out = _outputs(from_sklearn(three, tmp_path / "three.safetensors"), u)  # no scaler: the embeddings as they are
    assert np.allclose(torch.softmax(torch.as_tensor(out), 1).numpy(), three.predict_proba(u), atol=1e-5)
    with pytest.raises(HarnessError, match="activation"):
        from_sklearn(MLPClassifier(hidden_layer_sizes=(4,), activation="logistic", max_iter=20).fit(u, y), tmp_path / "x")


def test_a_torch_sequential_gives_the_same_outputs(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Dropout(0.1), torch.nn.Linear(8, 1, bias=False)).eval()
    u = np.random.default_rng(1).normal(size=(10, 6))
    mean, scale = u.mean(0), u.std(0)
    path = from_torch(model, tmp_path / "t.safetensors", mean=mean, scale=scale)
    want = model(torch.as_tensor((u - mean) / scale, dtype=torch.float32)).detach().numpy()
    assert np.allclose(_outputs(path, u), want, atol=1e-5) and load_head(path)[0].bias_mode == "first"
    # whether its inputs were normalised is left to the card unless stated (a MiniLM head's inputs are, as the card's)
    from harness.pipeline.stages import GivenHead

    def stated_l2(file):
        head, meta, frame = load_head(file)
        return GivenHead(head, frame, meta).l2

    assert stated_l2(path) is None and stated_l2(from_torch(model, tmp_path / "n.safetensors", l2=False)) is False
    with pytest.raises(HarnessError, match="GELU"):
        from_torch(torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.GELU(), torch.nn.Linear(8, 1)), tmp_path / "g")
