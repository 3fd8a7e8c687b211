"""Bad attack input fails up front with one line naming the field, the value and the fix."""

import pytest
import torch

from harness.victims.frame import Frame

from harness.attacks import ATTACKS, Victim, make_attack
from harness.errors import HarnessError
from harness.heads.mlp import MLPHead


def test_registry_knows_both_attacks():
    assert {"kkt", "kkt-reference"} <= set(ATTACKS)
    assert make_attack("kkt", {"m": 3}).params.m == 3


@pytest.mark.parametrize(
    "name,params,field,hint",
    [
        ("kkx", {}, "attack", "did you mean 'kkt'"),
        ("kkt", {"lrr": 0.1}, "kkt.lrr", "did you mean 'lr'"),
        ("kkt", {"lr": -0.1}, "kkt.lr", "greater than 0"),
        ("kkt-reference", {"lr": -1.0}, "kkt-reference.lr", "greater than 0"),
        ("kkt", {"lambda_min": 0.0}, "kkt.lambda_min", "greater than 0"),
        ("kkt-reference", {"lambda_min": -0.1}, "kkt-reference.lambda_min", "greater than 0"),
        ("kkt", {"iterations": 0}, "kkt.iterations", "greater than or equal to 1"),
        ("kkt", {"restarts": 0}, "kkt.restarts", "greater than or equal to 1"),
        ("kkt", {"time_budget_s": 0}, "kkt.time_budget_s", "greater than 0"),
        ("kkt", {"init": "rowz"}, "kkt.init", "rows"),
        ("kkt", {"m": True}, "kkt.m", "true/false where a number is asked"),  # it ran with m = 1
        ("kkt", {"lr_range": [0.1, 0.001]}, "kkt.lr_range", "0 < lo <= hi"),  # a check across fields names its field
        ("kkt", {"products": "reduced", "dtype": "float64"}, "kkt.products", "use products 'full'"),
    ],
)
def test_bad_params_raise_one_line(name, params, field, hint):
    with pytest.raises(HarnessError) as e:
        make_attack(name, params)
    line = str(e.value)
    assert e.value.field == field and hint in line and "\n" not in line


@pytest.mark.parametrize("name", ["kkt", "kkt-reference"])
def test_head_backbone_mismatch_fails_before_work(name):
    head = MLPHead([16, 8, 1])
    victim = Victim(head=head, loss="logistic", num_classes=2, frame=Frame(torch.zeros(384)))
    with pytest.raises(HarnessError, match="victim.frame"):
        make_attack(name, {"iterations": 10**6, "restarts": 10**4}).reconstruct(victim, progress=False)


def test_yaml_numbers_read_as_text_stay_accepted():
    """PyYAML reads `lr: 1e-3` (no dot) as the text '1e-3': it must still be the number, not refused."""
    import yaml

    params = yaml.safe_load("lr: 1e-3\nm: 40\n")
    assert params["lr"] == "1e-3" and make_attack("kkt", params).params.lr == pytest.approx(1e-3)
