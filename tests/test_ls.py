"""`recon-harness ls`: every registry listed, one entry's parameters read from its pydantic model."""

from __future__ import annotations

import importlib

import pytest
from pydantic import BaseModel, Field

from harness.attacks.registry import ATTACKS
from harness.cli import main
from harness.cli import ls as ls_mod


def _ls(capsys, *args) -> tuple[int, str, str]:
    rc = main(["ls", *args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_ls_attacks_lists_every_attack_with_a_description(capsys):
    rc, out, _ = _ls(capsys, "attacks")
    assert rc == 0
    for name in ATTACKS:
        line = next(ln for ln in out.splitlines() if f" {name} " in ln)
        assert len(line.split("│")[2].strip()) > 10  # a one-line description, not an empty cell


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_ls_one_attack_prints_every_parameter_of_its_model(capsys, name):
    rc, out, _ = _ls(capsys, "attacks", name)
    assert rc == 0
    rows = {ln.split("│")[1].strip(): ln for ln in out.splitlines() if ln.startswith("│") and ln.split("│")[1].strip()}
    fields = ATTACKS[name].Params.model_fields
    assert set(fields) <= set(rows)  # read from the model: a new parameter shows up without touching ls
    for field, info in fields.items():
        cells = [c.strip() for c in rows[field].split("│")[1:-1]]
        assert cells[2] == ls_mod.default_of(info)
        if info.description:
            assert cells[4] and info.description.startswith(cells[4].split()[0])
    assert "iterations" in rows and "2000" in rows["iterations"] and ">= 1" in rows["iterations"]


def test_ls_is_generic_a_new_registry_is_one_entry(capsys, monkeypatch):
    class Params(BaseModel):
        steps: int = Field(10, ge=1, description="how many steps")
        mode: str = "fast"

    class Toy:
        """A toy entry for the test."""

        name = "toy"

    Toy.Params = Params
    listing = ls_mod.Listing("toys", "toy things", lambda: {"toy": Toy}, ls_mod.class_rows, ls_mod.class_detail)
    monkeypatch.setitem(ls_mod.LISTINGS, "toys", listing)
    rc, out, _ = _ls(capsys, "toys")
    assert rc == 0 and "A toy entry for the test." in out and " 2 " in out
    rc, out, _ = _ls(capsys, "toys", "toy")
    assert rc == 0 and "how many steps" in out and ">= 1" in out and "fast" in out


@pytest.mark.parametrize(
    "args,field,hint",
    [(["attack"], "ls = 'attack'", "did you mean 'attacks'"),
     (["attacks", "kk"], "attack = 'kk'", "did you mean 'kkt'"),
     (["models", "identiti"], "model = 'identiti'", "did you mean 'identity'"),
     (["tasks", "quickstrat"], "task = 'quickstrat'", "did you mean 'quickstart'"),
     (["trainers", "given"], "trainer = 'given'", "is not a trainer a task names"),
     (["recipes"], "ls = 'recipes'", "ls transforms and recon-harness ls trainers")],
)
def test_unknown_names_are_one_line_with_did_you_mean(capsys, args, field, hint):
    rc, out, err = _ls(capsys, *args)
    assert rc == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and field in err and hint in err


def test_ls_models_and_tasks_still_list_and_show_one_entry(capsys):
    rc, out, _ = _ls(capsys, "models")
    assert rc == 0 and "identity" in out and "all-minilm-l6-v2" in out
    rc, out, _ = _ls(capsys, "tasks")
    assert rc == 0 and "quickstart" in out
    rc, out, _ = _ls(capsys, "models", "identity")
    assert rc == 0 and "pooling" in out and "flatten" in out


@pytest.mark.parametrize("what,ref", [("trainers", "harness.victims.trainers:TRAINERS"), ("transforms", "harness.victims.transforms:TRANSFORMS")])
def test_victim_recipe_registries_are_listed(capsys, what, ref):
    module, attr = ref.split(":")
    try:
        entries = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError):
        pytest.skip(f"{ref} is not in this install")
    rc, out, _ = _ls(capsys, what)
    assert rc == 0 and all(name in out for name in entries)
    name = next(iter(entries))
    assert _ls(capsys, what, name)[0] == 0


def test_one_invalid_task_file_is_named_and_the_others_still_listed(capsys, monkeypatch, tmp_path):
    (tmp_path / "broken.yaml").write_text("model: identity\nclasses: [a]\n")
    monkeypatch.setenv("RECON_HARNESS_TASKS", str(tmp_path))
    assert main(["ls", "tasks"]) == 0
    got = capsys.readouterr()
    assert "quickstart" in got.out and "broken" not in got.out
    (line,) = got.err.strip().splitlines()
    assert line.startswith(f"recon-harness: warning: left out {tmp_path / 'broken.yaml'}: data = None: required field")


def test_type_names_read_as_written():
    import typing

    from harness.cli.ls import type_name

    assert type_name(tuple[int, ...]) == "tuple[int, ...]"  # sklearn-mlp's hidden_layer_sizes
    assert type_name(typing.Optional[tuple[float, float]]) == "tuple[float, float] | None"
    assert type_name(typing.Literal["adam", "sgd"]) == "adam | sgd"
