"""Model cards and tasks: the shipped ones validate; bad ones fail with one line naming field and fix."""

from __future__ import annotations

import pytest

from harness.errors import HarnessError
from harness.registry import MODELS, TASKS, SpecRegistry
from harness.specs.model_card import ModelCard
from harness.specs.task import TaskSpec

REQUIRED_CARDS = {
    "facebook/dinov2-small", "facebook/dino-vits16", "openai/clip-vit-base-patch32",
    "google/vit-base-patch16-224-in21k", "sentence-transformers/all-MiniLM-L6-v2",
    "google-bert/bert-base-uncased", "identity",
}


def test_shipped_cards_validate_and_cover_the_required_backbones():
    cards = MODELS.all()
    assert REQUIRED_CARDS <= {c.id for c in cards}
    for c in cards:
        assert not c.trust_remote_code
        assert c.use_safetensors
        # a Hub card pins a commit; a local directory (the fine-tuned default case) is what it holds
        assert c.pinned or c.is_identity or c.is_local, f"{c.name} is not pinned to a commit"


def test_shipped_tasks_validate_and_name_registered_models():
    tasks = TASKS.all()
    assert "quickstart" in {t.name for t in tasks}
    for t in tasks:
        MODELS.get(t.model)


def test_card_lookup_by_hub_id():
    assert MODELS.get("sentence-transformers/all-MiniLM-L6-v2").name == "all-minilm-l6-v2"


def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_unknown_field_suggests_the_right_one(tmp_path):
    p = _write(tmp_path, "bad.yaml", "id: org/m\nmodality: text\npoolng: mean\n")
    with pytest.raises(HarnessError) as e:
        MODELS.load_file(p)
    line = e.value.line()
    assert "bad.yaml" in line and "poolng" in line and "did you mean 'pooling'" in line
    assert "\n" not in line


def test_bad_enum_value_names_field_value_and_choices(tmp_path):
    p = _write(tmp_path, "bad.yaml", "id: org/m\nmodality: audio\n")
    with pytest.raises(HarnessError) as e:
        MODELS.load_file(p)
    assert e.value.field == "modality" and e.value.value == "audio"
    assert "'image' or 'text'" in e.value.line()


def test_wrong_type_and_missing_field(tmp_path):
    p = _write(tmp_path, "t.yaml", "model: identity\ndata: {source: x.parquet, input_column: img}\nclasses: [a, b]\nper_class: many\n")
    with pytest.raises(HarnessError) as e:
        TASKS.load_file(p)
    assert e.value.field == "per_class" and e.value.value == "many"
    p = _write(tmp_path, "t2.yaml", "model: identity\nclasses: [a, b]\nper_class: 3\n")
    with pytest.raises(HarnessError) as e:
        TASKS.load_file(p)
    assert e.value.field == "data" and "missing" in e.value.line()
    p = _write(tmp_path, "t3.yaml", "model: identity\ndata: {source: x, format: hub, revision: 20240101, input_column: img}\n"
                                    "classes: [a, b]\nper_class: 3\nnonmembers: 4\n")
    with pytest.raises(HarnessError) as e:  # an all-digit revision, unquoted: YAML made it a number
        TASKS.load_file(p)
    assert e.value.field == "data.revision" and 'quote it (revision: "20240101")' in e.value.line()


def test_a_task_needs_a_non_member_control(tmp_path):
    p = _write(tmp_path, "t.yaml", "model: identity\ndata: {source: x, input_column: img}\nclasses: [a, b]\nper_class: 3\nnonmembers: 0\n")
    with pytest.raises(HarnessError) as e:  # it ran every stage before, then failed scoring against no control
        TASKS.load_file(p)
    assert e.value.field == "nonmembers" and e.value.value == 0 and "greater than or equal to 1" in e.value.line()


def test_nested_unknown_field(tmp_path):
    p = _write(tmp_path, "t.yaml", "model: identity\ndata: {source: x, input_column: img}\nclasses: [a, b]\nper_class: 3\nhead: {widht: [10]}\n")
    with pytest.raises(HarnessError) as e:
        TASKS.load_file(p)
    assert e.value.field == "head.widht" and "did you mean 'widths'" in e.value.line()


def test_yaml_syntax_error_and_missing_file(tmp_path):
    p = _write(tmp_path, "broken.yaml", "id: [unclosed\nmodality: text\n")
    with pytest.raises(HarnessError) as e:
        MODELS.load_file(p)
    assert "YAML syntax error" in e.value.line() and "broken.yaml" in e.value.line()
    with pytest.raises(HarnessError) as e:
        MODELS.load_file(tmp_path / "nope.yaml")
    assert "no such file" in e.value.line()


def test_a_hub_id_no_card_names_says_how_to_write_one():
    with pytest.raises(HarnessError) as e:
        MODELS.get("sentence-transformers/all-mpnet-base-v2")
    assert "write a card (id: sentence-transformers/all-mpnet-base-v2, modality, pooling" in e.value.line()


def test_unknown_names_get_did_you_mean():
    with pytest.raises(HarnessError) as e:
        MODELS.get("dinov2-smal")
    assert "did you mean 'dinov2-small'" in e.value.line()
    with pytest.raises(HarnessError) as e:
        TASKS.get("quickstrat")
    assert "did you mean 'quickstart'" in e.value.line()


def test_identity_card_rules():
    with pytest.raises(ValueError):
        ModelCard(name="x", id="identity", modality="text", pooling="flatten")
    with pytest.raises(ValueError):
        ModelCard(name="x", id="org/m", modality="image", pooling="flatten")


def test_logistic_needs_two_classes_where_the_harness_trains_the_head(tmp_path):
    """Stated, it is refused as the task is read; left at its default, a 3-class task is read (a classifier card's
    head and `finetune` use cross-entropy: it was refused before checkpoint_task could say so) and a head the
    harness would train with it is refused before any draw, naming head.loss."""
    import datasets

    from harness.classifiers.task import checkpoint_task
    from harness.data.split import load_split

    with pytest.raises(ValueError, match="binary"):
        TaskSpec(name="t", model="m", data={"source": "x", "input_column": "c"}, classes=["a", "b", "c"], per_class=2,
                 head={"loss": "logistic"})
    data = tmp_path / "three.parquet"
    datasets.Dataset.from_dict({"c": [f"s{i}" for i in range(30)], "label": ["abc"[i % 3] for i in range(30)]}).to_parquet(str(data))
    task = TaskSpec(name="t", model="m", data={"source": str(data), "input_column": "c"}, classes=["a", "b", "c"],
                    per_class=2, nonmembers=3)
    assert task.head.loss == "logistic"
    with pytest.raises(HarnessError) as e:
        load_split(task)
    assert e.value.field == "head.loss" and "binary" in e.value.line() and "head.loss: ce" in e.value.line()
    assert load_split(checkpoint_task(task)).class_names == ["a", "b", "c"]
    assert load_split(task.model_copy(update={"head": task.head.model_copy(update={"loss": "ce"})})).n == 6


def test_registry_search_path_env(tmp_path, monkeypatch):
    (tmp_path / "models").mkdir()
    _write(tmp_path / "models", "mine.yaml", "id: org/mine\nmodality: text\n")
    monkeypatch.setenv("RECON_HARNESS_MODELS", str(tmp_path / "models"))
    reg = SpecRegistry("model card", ModelCard, "models", "RECON_HARNESS_MODELS", lambda c: c.id)
    assert reg.get("mine").id == "org/mine"
    assert reg.get("org/mine").name == "mine"
