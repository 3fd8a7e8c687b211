"""The 'disjoint' null victim: its own disjoint draw, shuffled labels, candidates in the members' frame."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.attacks import make_attack
from harness.data.split import load_split
from harness.errors import HarnessError
from harness.pipeline.stages import Embedded, attack_stage, train_stage
from harness.victims.frame import Frame
from harness.specs.task import HeadRecipe, TaskSpec, AttackRecipe
from tests.conftest import SST2

DATA = {"source": str(SST2), "format": "parquet", "split": "train", "input_column": "sentence", "label_column": "label"}


def _spec(**over) -> TaskSpec:
    return TaskSpec(**{"name": "tiny", "model": "identity", "data": DATA, "classes": ["negative", "positive"], "per_class": 5,
                       "nonmembers": 30, **over})


def test_split_draws_a_third_disjoint_set_only_for_the_disjoint_null():
    split = load_split(_spec())  # 'disjoint' is the default control
    assert len(split.null_rows) == 10 and sorted(np.bincount(split.null_labels)) == [5, 5]
    rows = [set(split.member_rows), set(split.nonmember_rows), set(split.null_rows)]
    assert all(not (a & b) for i, a in enumerate(rows) for b in rows[i + 1 :])
    assert len(load_split(_spec(null_victim="shuffled")).null_rows) == 0
    with pytest.raises(HarnessError, match="disjoint null victim"):
        load_split(_spec(per_class=150, nonmembers=100))  # 400 rows cannot hold 3 x 150 + 100


def test_a_repeated_input_is_drawn_once_in_one_role(tmp_path):
    """Scraped data repeats itself: every row of the data set twice. Each input is drawn once, as a member, a
    non-member or into the null victim's draw (a repeated member among the non-members set the threshold on
    itself, and the null victim trained on members and "reconstructed" them); the repeats are counted. A data
    set without repeats draws the same rows as before."""
    import pandas as pd

    rows = pd.read_parquet(SST2).head(60)
    twice = tmp_path / "twice.parquet"
    pd.concat([rows, rows]).to_parquet(twice)
    split = load_split(_spec(data={**DATA, "source": str(twice)}, classes=["0", "1"], per_class=8, nonmembers=20))
    drawn = split.member_inputs + split.nonmember_inputs + split.null_inputs
    assert len(drawn) == len(set(drawn)) == 16 + 20 + 16 and split.repeats == 60
    plain = load_split(_spec())
    assert plain.repeats == 0 and plain.member_rows.tolist() == load_split(_spec()).member_rows.tolist()


def test_a_repeated_image_file_in_an_image_folder_is_drawn_once(tmp_path):
    """An image folder's rows hold paths, not bytes: the same picture saved under two names is one input."""
    from PIL import Image

    g = np.random.default_rng(0)
    for cls in ("cat", "dog"):
        (tmp_path / "train" / cls).mkdir(parents=True)
        for i in range(12):
            img = Image.fromarray(g.integers(0, 255, (8, 8, 3), dtype=np.uint8))
            img.save(tmp_path / "train" / cls / f"{i}.png")
            img.save(tmp_path / "train" / cls / f"{i}_copy.png")
    data = {"source": str(tmp_path), "format": "imagefolder", "input_column": "image", "label_column": "label"}
    split = load_split(_spec(data=data, classes=["cat", "dog"], per_class=4, nonmembers=8))
    assert split.repeats == 24


def test_whole_float_labels_are_named_by_their_integers(tmp_path):
    """Labels 0.0 / 1.0 (what pandas writes once a label column held a NaN) are classes 0 and 1: the advice was to
    write 0.0, which the spec then refused as not a string."""
    import pandas as pd

    rows = pd.read_parquet(SST2).head(60)
    floats = tmp_path / "floats.parquet"
    rows.assign(label=rows.label.astype(float)).to_parquet(floats)
    assert load_split(_spec(data={**DATA, "source": str(floats)}, classes=[0, 1], per_class=8, nonmembers=20)).n == 16


def test_disjoint_null_trains_on_its_draw_and_attacks_in_the_members_frame():
    split = load_split(_spec())
    gen = torch.Generator().manual_seed(0)
    mem, non, nul = (torch.randn(k, 12, generator=gen) for k in (10, 30, 10))
    nul = nul + 3.0  # another draw, another mean
    emb = Embedded(mem - mem.mean(0), non - mem.mean(0), mem.mean(0), False, False, 0.0, raw=torch.cat([mem, non, nul]))
    recipe = HeadRecipe(widths=[16], optimizer="adam", lr=0.01, max_steps=300)
    null = train_stage(emb, split, recipe, seed=0, kind="null", progress=False, null_mode="disjoint")
    assert torch.allclose(null.frame.mean, nul.mean(0))  # its own frame: fitted on its own draw
    assert sorted(null.labels.tolist()) == sorted(split.null_labels.tolist())
    assert not torch.equal(null.labels, torch.as_tensor(split.null_labels))  # shuffled
    assert null.report.train_acc == 1.0 and np.isfinite(null.oracle_residual)
    attack = AttackRecipe(name="kkt", params={"m": 4, "restarts": 2, "iterations": 20, "rungs": 0, "seed": 3})
    res = attack_stage(null, emb, recipe, attack, 2, pixels=False, progress=False)
    # the same attack on the head in its own centring, shifted by hand, gives the same candidates
    from harness.attacks.base import Victim

    own = Victim(head=null.head, loss="logistic", num_classes=2, frame=Frame(nul.mean(0)), prior="norm",
                 typical_norm=float((non - nul.mean(0)).norm(dim=1).median()))  # public norm in its own frame
    direct = make_attack("kkt", attack.params).reconstruct(own, progress=False)
    assert torch.allclose(res.candidates, direct.candidates + (nul.mean(0) - mem.mean(0)), atol=1e-5)
