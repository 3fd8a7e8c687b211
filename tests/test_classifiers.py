"""Fine-tuned classification checkpoints: fine-tuned for real on fixture rows (`recon-harness finetune`),
laid out in a Hub cache, then attacked end to end (`recon-harness run`) through their own heads."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from harness.backbones import load_backbone, resolve_model
from harness.cli import main
from harness.classifiers import layouts
from harness.specs.model_card import ModelCard
from harness.store import ResultStore
from tests.conftest import FIXTURES
from tests.tiny_models import build_tiny_text_classifier

ATTACK = {"name": "kkt", "params": {"m": 16, "restarts": 4, "iterations": 60}}
EVIDENCE = {"invert_top": 2, "invert_members": 1, "word_search_top": 0}


def _yaml(path: Path, body: dict) -> Path:
    path.write_text(yaml.safe_dump(body))
    return path


def _backbone_card(tmp: Path, repo: str, rev: str, modality: str) -> Path:
    return _yaml(tmp / f"{repo.split('/')[1]}.yaml", {"id": repo, "revision": rev, "modality": modality, "pooling": "cls"})


def _finetune_task(tmp: Path, modality: str) -> Path:
    text = modality == "text"
    return _yaml(tmp / "finetune-task.yaml", {
        "model": "unused", "per_class": 12, "nonmembers": 24, "seed": 0, "null_victim": None,
        "classes": ["negative", "positive"] if text else ["airplane", "automobile"],
        "data": {"source": str(FIXTURES / ("sst2-train-400.parquet" if text else "cifar10-test-300.parquet")),
                 "input_column": "sentence" if text else "img", "label_column": "label"},
    })


def _attack_task(tmp: Path, ckpt: Path, modality: str, name: str = "attack-task", **data) -> Path:
    text = modality == "text"
    return _yaml(tmp / f"{name}.yaml", {
        "model": "unused", "per_class": 12, "nonmembers": 24, "seed": 0,
        "classes": ["negative", "positive"] if text else ["airplane", "automobile"],
        "data": {"source": str(ckpt / "data"), "split": "train", "nonmember_split": "test",
                 "input_column": "sentence" if text else "img", "label_column": "label", **data},
        "attack": ATTACK, "evidence": EVIDENCE,
    })


def fine_tuned(tmp: Path, hub_repo, base_dir: Path, repo: str, modality: str, *extra) -> tuple[Path, Path]:
    """Fine-tune from a Hub-cache backbone, then publish the checkpoint to the Hub cache; its classifier card."""
    card = _backbone_card(tmp, repo, hub_repo(base_dir, repo), modality)
    ckpt = tmp / "ckpt"
    assert main(["finetune", str(_finetune_task(tmp, modality)), "--model", str(card), "--out", str(ckpt),
                 "--steps", "60", "--quiet", *extra]) == 0
    rev = hub_repo(ckpt, repo + "-finetuned")
    cls_card = _yaml(tmp / "classifier.yaml", {"id": repo + "-finetuned", "revision": rev, "kind": "classifier",
                                               "modality": modality})
    return ckpt, cls_card


def test_distilbert_checkpoint_end_to_end(tmp_path, hub_repo, tiny_distilbert_dir, one_thread):
    ckpt, card = fine_tuned(tmp_path, hub_repo, tiny_distilbert_dir, "tiny-org/distilbert-tiny", "text", "--update-backbone")
    out = tmp_path / "out"
    assert main(["run", str(_attack_task(tmp_path, ckpt, "text")), "--model", str(card), "--out", str(out), "--quiet"]) == 0
    store = ResultStore(out, create=False)
    (v,) = store.read("victims").to_pylist()
    info = yaml.safe_load(v["trainer_info"])
    assert v["model_kind"] == "classifier" and v["trainer"] == "given" and v["head_dims"] == [32, 32, 2]
    assert info["architecture"] == "DistilBertForSequenceClassification" and info["labels"] == ["negative", "positive"]
    assert info["logits_max_abs_diff"] <= 1e-4 and info["logits_checked_on"] == 32
    assert v["n_members"] == 24 and v["n_nonmembers"] == 24 and v["test_acc"] is not None
    assert len(store.read("candidates")) >= 16 and (out / "report.html").is_file()
    assert "DistilBertForSequenceClassification @ " in (out / "report.html").read_text(encoding="utf-8")
    assert len(store.read("inversions")) >= 1
    # integer classes are the data's label values, matched to the checkpoint's outputs by the data's names for them:
    # SST-2's 0 is 'negative', the checkpoint's output 0 (it was refused before the data was read), [1, 0] swaps
    by_value = yaml.safe_load(_attack_task(tmp_path, ckpt, "text").read_text(encoding="utf-8")) | {"classes": [0, 1]}
    task = _yaml(tmp_path / "by-value.yaml", by_value)
    assert main(["run", str(task), "--model", str(card), "--out", str(tmp_path / "v"), "--quiet", "--no-evidence"]) == 0
    (w,) = ResultStore(tmp_path / "v", create=False).read("victims").to_pylist()
    assert (w["test_acc"], w["oracle_residual"]) == (v["test_acc"], v["oracle_residual"])  # the same classes, rows
    task = _yaml(tmp_path / "swapped.yaml", by_value | {"classes": [1, 0]})
    assert main(["run", str(task), "--model", str(card), "--out", str(tmp_path / "s"), "--quiet", "--no-evidence"]) == 2
    assert not (tmp_path / "s").exists()


def test_vit_checkpoint_end_to_end_is_linear(tmp_path, hub_repo, tiny_vit_dir, one_thread):
    ckpt, card = fine_tuned(tmp_path, hub_repo, tiny_vit_dir, "tiny-org/vit-tiny", "image")
    out = tmp_path / "out"
    assert main(["run", str(_attack_task(tmp_path, ckpt, "image")), "--model", str(card), "--out", str(out), "--quiet"]) == 0
    (v,) = ResultStore(out, create=False).read("victims").to_pylist()
    assert v["head_dims"] == [32, 2] and yaml.safe_load(v["trainer_info"])["architecture"] == "ViTForImageClassification"
    assert v["n_members"] == 24 and (out / "report.html").is_file()


@pytest.mark.parametrize("family,arch,dims", [("bert", "BertForSequenceClassification", [32, 32, 2]),
                                               ("roberta", "RobertaForSequenceClassification", [32, 32, 2])])
def test_tanh_heads_split_and_reproduce_the_logits(tmp_path, family, arch, dims):
    path = build_tiny_text_classifier(tmp_path / family, family)
    bb = load_backbone(resolve_model(ModelCard(name="c", id=str(path), modality="text", kind="classifier")))
    assert bb.classifier.info.architecture == arch and bb.classifier.head.dims == dims
    assert bb.classifier.head.activation == "tanh" and bb.classifier.head.bias_mode == "all"
    sentences = ["a gripping , funny film", "dull and lifeless", "the best movie of the year"]
    assert bb.check_head(sentences) <= 1e-4
    assert bb.embed(sentences, progress=False).shape == (3, 32)


# ---- bad input: one line, exit 2, no rows --------------------------------------------------------
def _fails(capsys, argv, *needles) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err
    return err


def test_bad_checkpoints_and_splits_are_one_line(tmp_path, hub_repo, tiny_distilbert_dir, capsys, monkeypatch):
    ckpt, card = fine_tuned(tmp_path, hub_repo, tiny_distilbert_dir, "tiny-org/distilbert-tiny", "text")
    task = _attack_task(tmp_path, ckpt, "text")
    out = tmp_path / "out"

    def run(card_path, task_path=task):
        return ["run", str(task_path), "--model", str(card_path), "--out", str(out), "--quiet"]

    base = _yaml(tmp_path / "base.yaml", {"id": str(tiny_distilbert_dir), "kind": "classifier", "modality": "text"})
    _fails(capsys, run(base), "is not a classifier checkpoint", "DistilBertModel")
    gpt2 = build_tiny_text_classifier(tmp_path / "gpt2", "gpt2")
    _fails(capsys, run(_yaml(tmp_path / "gpt2.yaml", {"id": str(gpt2), "kind": "classifier", "modality": "text"})),
           "GPT2ForSequenceClassification head the attack cannot use", "DistilBertForSequenceClassification")
    _fails(capsys, run(card, _attack_task(tmp_path, ckpt, "text", "no-split", nonmember_split="validation")),
           "data.nonmember_split = 'validation'", "no such split")
    wrong = yaml.safe_load(task.read_text(encoding="utf-8")) | {"classes": ["positive", "negative"]}
    _fails(capsys, run(card, _yaml(tmp_path / "wrong.yaml", wrong)), "classes = 'positive'", "output 0")
    _fails(capsys, ["run", str(task), "--model", str(card), "--out", str(out), "--recipe", "standardize+paper"], "--recipe")
    monkeypatch.setitem(layouts.LAYOUTS, "DistilBertForSequenceClassification",
                        layouts.HeadLayout(("pre_classifier", "classifier"), "tanh", "a wrong layout"))
    _fails(capsys, run(card), "do not reproduce the checkpoint's logits", "max abs difference")
    assert not out.exists() or not list(out.rglob("*.parquet"))


# ---- integer classes: a label value of the data, never an output index ---------------------------
def _info(labels, arch="BertForSequenceClassification"):
    from harness.classifiers.checkpoint import CheckpointInfo

    return CheckpointInfo("ck", arch, tuple(labels), layouts.LAYOUTS[arch])


def test_integer_classes_are_label_values_of_the_data_not_output_indices():
    from harness.classifiers.checkpoint import check_classes
    from harness.errors import HarnessError

    info = _info(["positive", "negative"])  # output 0 is positive; in SST-2 label value 0 is negative
    with pytest.raises(HarnessError, match="not an output index") as e:  # was accepted as outputs 0, 1: labels swapped
        check_classes(info, [0, 1])
    assert e.value.field == "classes" and "['positive', 'negative']" in e.value.line()
    check_classes(info, ["Positive", "negative"])
    check_classes(info, [1, 0], data_names=["positive", "negative"])  # the data names value 1 'positive'
    with pytest.raises(HarnessError, match="label value 0 of the data is 'negative', but output 0 of ck is 'positive'"):
        check_classes(info, [0, 1], data_names=["negative", "positive"])
    digits = _info(["1", "0"])  # what finetune writes for integer labels given as [1, 0]
    check_classes(digits, [1, 0])
    check_classes(digits, ["1", "0"])
    with pytest.raises(HarnessError, match="output 0 of ck is '1'"):
        check_classes(digits, [0, 1])
    check_classes(_info(["LABEL_0", "LABEL_1"]), [1, 0])  # generic labels: any classes, in the order given


@pytest.mark.parametrize("values", [(1, 0), (7, 3)])
def test_finetune_splits_read_back_with_the_same_integer_classes(tmp_path, values):
    """CSV labels are integers; the written data/ must give each integer class the same rows (it swapped [1, 0]
    and refused [7, 3] as out of range)."""
    import pyarrow.parquet as pq

    from harness.classifiers.splits import write_splits
    from harness.data.split import load_split
    from harness.specs.task import TaskSpec

    table = pq.read_table(FIXTURES / "sst2-train-400.parquet").to_pylist()
    code = {0: values[1], 1: values[0]}  # positive -> values[0]
    csv = tmp_path / "sst.csv"
    csv.write_text("sentence,label\n" + "".join(f"\"{r['sentence'].replace(chr(34), '')}\",{code[r['label']]}\n" for r in table))
    truth = {r["sentence"].replace('"', ""): code[r["label"]] for r in table}
    task = TaskSpec(name="t", model="m", classes=list(values), per_class=6, nonmembers=12, null_victim=None,
                    data={"source": str(csv), "format": "csv", "input_column": "sentence", "label_column": "label"})
    split = load_split(task)
    assert [truth[s] for s in split.member_inputs] == [values[i] for i in split.member_labels]
    write_splits(tmp_path / "data", task, split)
    back = task.model_copy(update={"data": task.data.model_copy(update={
        "source": str(tmp_path / "data"), "format": "parquet", "split": "train", "nonmember_split": "test"})})
    again = load_split(back)
    assert sorted(again.member_inputs) == sorted(split.member_inputs)
    assert [truth[s] for s in again.member_inputs] == [values[i] for i in again.member_labels]
    assert [truth[s] for s in again.nonmember_inputs] == [values[i] for i in again.nonmember_labels]


def test_named_splits_read_back_by_name_and_by_value(tmp_path):
    from harness.classifiers.splits import write_splits
    from harness.data.split import load_split
    from harness.specs.task import TaskSpec

    data = {"source": str(FIXTURES / "sst2-train-400.parquet"), "input_column": "sentence", "label_column": "label"}
    task = TaskSpec(name="t", model="m", classes=["positive", "negative"], per_class=6, nonmembers=12, null_victim=None, data=data)
    split = load_split(task)
    write_splits(tmp_path / "data", task, split)
    for classes in (["positive", "negative"], [1, 0]):  # value 1 is 'positive' in the written files too
        back = task.model_copy(update={"classes": classes, "data": task.data.model_copy(update={
            "source": str(tmp_path / "data"), "split": "train", "nonmember_split": "test"})})
        again = load_split(back)
        assert again.class_names == ["positive", "negative"] and sorted(again.member_inputs) == sorted(split.member_inputs)
        assert dict(zip(again.member_inputs, again.member_labels.tolist())) == dict(zip(split.member_inputs, split.member_labels.tolist()))


def _small_checkpoint_run(tmp_path: Path, path: Path) -> tuple[Path, Path, Path]:
    """A classifier card for the checkpoint at `path`, a small SST-2 task for it, and an output folder."""
    card = _yaml(tmp_path / "c.yaml", {"id": str(path), "kind": "classifier", "modality": "text"})
    task = _yaml(tmp_path / "t.yaml", {
        "model": "unused", "per_class": 4, "nonmembers": 8, "seed": 0, "classes": ["negative", "positive"],
        "data": {"source": str(FIXTURES / "sst2-train-400.parquet"), "input_column": "sentence"}, "attack": ATTACK})
    return card, task, tmp_path / "out"


def test_backbone_weights_missing_from_the_checkpoint_are_refused(tmp_path, capsys):
    """They were filled with random values and the run went on."""
    from safetensors.torch import load_file, save_file

    path = build_tiny_text_classifier(tmp_path / "bert", "bert")
    weights = load_file(str(path / "model.safetensors"))
    gone = [k for k in weights if k.startswith("bert.encoder.layer.1.")]
    save_file({k: v for k, v in weights.items() if k not in gone}, str(path / "model.safetensors"), metadata={"format": "pt"})
    capsys.readouterr()
    card, task, out = _small_checkpoint_run(tmp_path, path)
    err = _fails(capsys, ["run", str(task), "--model", str(card), "--out", str(out), "--quiet"],
                 f"lacks {len(gone)} weights its BertForSequenceClassification needs (bert.encoder.layer.1.", "save_pretrained")
    assert "LOAD REPORT" not in err and not list(out.rglob("*.parquet"))


@pytest.mark.parametrize("config,needle", [
    ([], "a JSON list, not an object"),
    ({"architectures": ["BertForSequenceClassification"], "id2label": {"negative": 0, "positive": 1}}, "id2label"),
    ({"architectures": "BertForSequenceClassification"}, "architectures is 'BertForSequenceClassification'"),
    ({"architectures": ["BertForSequenceClassification"], "id2label": {"0": "a", "2": "b"}}, "not 0..1"),
    ({"architectures": ["BertForSequenceClassification"], "num_labels": "2"}, "num_labels is '2'"),
])
def test_a_malformed_config_is_one_line(tmp_path, capsys, config, needle):
    """`[]` and names as id2label's keys crashed read_checkpoint (AttributeError, ValueError: exit 3)."""
    import json

    path = build_tiny_text_classifier(tmp_path / "bert", "bert")
    (path / "config.json").write_text(json.dumps(config))
    capsys.readouterr()
    card, task, out = _small_checkpoint_run(tmp_path, path)
    _fails(capsys, ["run", str(task), "--model", str(card), "--out", str(out), "--quiet"],
           "has a malformed config.json", needle, "save_pretrained")
    assert not out.exists() or not list(out.rglob("*.parquet"))


def test_a_default_two_label_config_without_label_fields_reads_as_transformers_does(tmp_path):
    """transformers 5 leaves id2label / num_labels out of config.json at their defaults; it was refused as
    'a one-output checkpoint (0 labels)'."""
    import json

    from harness.classifiers.checkpoint import read_checkpoint

    path = build_tiny_text_classifier(tmp_path / "bert", "bert")
    cfg = json.loads((path / "config.json").read_text(encoding="utf-8"))
    for key in ("id2label", "label2id", "num_labels"):
        cfg.pop(key, None)
    (path / "config.json").write_text(json.dumps(cfg))
    assert read_checkpoint("ck", path).labels == ("LABEL_0", "LABEL_1")
    bb = load_backbone(resolve_model(ModelCard(name="c", id=str(path), modality="text", kind="classifier")))
    assert bb.classifier.head.dims == [32, 32, 2] and bb.check_head(["a gripping , funny film", "dull"]) <= 1e-4


def test_three_classes_finetune_and_run_without_setting_head_loss(tmp_path, tiny_distilbert_dir, one_thread):
    """The task's default loss (logistic) refused 3 classes before checkpoint_task or finetune could use ce."""
    import datasets
    import pyarrow.parquet as pq

    rows = pq.read_table(FIXTURES / "sst2-train-400.parquet").to_pylist()[:120]
    data = tmp_path / "three.parquet"
    datasets.Dataset.from_dict({"sentence": [r["sentence"] for r in rows], "label": [i % 3 for i in range(len(rows))]},
                               features=datasets.Features({"sentence": datasets.Value("string"),
                                                           "label": datasets.ClassLabel(names=["a", "b", "c"])})
                               ).to_parquet(str(data))
    base = {"model": "unused", "per_class": 4, "nonmembers": 6, "seed": 0, "classes": ["a", "b", "c"],
            "attack": ATTACK, "evidence": EVIDENCE}
    task = _yaml(tmp_path / "three.yaml", base | {"null_victim": None, "data": {"source": str(data), "input_column": "sentence"}})
    card = _yaml(tmp_path / "bb.yaml", {"id": str(tiny_distilbert_dir), "modality": "text", "pooling": "cls"})
    ckpt = tmp_path / "ckpt #2: é"  # the card's id is this path, quoted (YAML read ' #' as a comment and ': ' as a map)
    assert main(["finetune", str(task), "--model", str(card), "--out", str(ckpt), "--steps", "3", "--quiet"]) == 0
    assert yaml.safe_load((ckpt / "card.yaml").read_text(encoding="utf-8"))["id"] == str(ckpt.resolve())
    run_task = _yaml(tmp_path / "run.yaml", base | {"data": {"source": str(ckpt / "data"), "split": "train",
                                                             "nonmember_split": "test", "input_column": "sentence"}})
    out = tmp_path / "out"
    assert main(["run", str(run_task), "--model", str(ckpt / "card.yaml"), "--out", str(out), "--quiet", "--no-evidence"]) == 0
    (v,) = ResultStore(out, create=False).read("victims").to_pylist()
    assert v["head_dims"] == [32, 32, 3] and yaml.safe_load(v["trainer_info"])["labels"] == ["a", "b", "c"]
    assert v["model"] == "ckpt--2---"  # the card is named after its checkpoint's folder (every one was named 'card')


def _sst_task(tmp: Path, **over) -> Path:
    return _yaml(tmp / "t.yaml", {
        "model": "unused", "per_class": 4, "nonmembers": 8, "seed": 0, "classes": ["negative", "positive"],
        "data": {"source": str(FIXTURES / "sst2-train-400.parquet"), "input_column": "sentence"}, "attack": ATTACK, **over})


def test_pickled_only_weights_under_use_safetensors_name_the_setting(tmp_path, capsys):
    import transformers

    path = build_tiny_text_classifier(tmp_path / "bert", "bert")
    model = transformers.BertForSequenceClassification.from_pretrained(str(path))
    (path / "model.safetensors").unlink()
    torch.save(model.state_dict(), path / "pytorch_model.bin")
    capsys.readouterr()
    card = _yaml(tmp_path / "c.yaml", {"id": str(path), "kind": "classifier", "modality": "text"})
    out = tmp_path / "out"
    _fails(capsys, ["run", str(_sst_task(tmp_path)), "--model", str(card), "--out", str(out), "--quiet"],
           "use_safetensors = True:", "pytorch_model.bin", "convert them to safetensors", "use_safetensors: false")
    assert not out.exists() or not list(out.rglob("*.parquet"))


class _Payload:  # a pickled object that is not a tensor: torch's weights_only load refuses it
    def __reduce__(self):
        return (print, ("unpickled",))


def test_pickled_weights_holding_more_than_tensors_are_refused_in_one_line(tmp_path, capsys):
    """use_safetensors: false lets a .bin through; torch's weights_only still refuses a pickle that holds code, and
    that refusal is one line (exit 2), not an internal error."""
    import transformers

    path = build_tiny_text_classifier(tmp_path / "bert", "bert")
    model = transformers.BertForSequenceClassification.from_pretrained(str(path))
    (path / "model.safetensors").unlink()
    torch.save({**model.state_dict(), "payload": _Payload()}, path / "pytorch_model.bin")
    capsys.readouterr()
    card = _yaml(tmp_path / "c.yaml", {"id": str(path), "kind": "classifier", "modality": "text", "use_safetensors": False})
    out = tmp_path / "out"
    _fails(capsys, ["run", str(_sst_task(tmp_path)), "--model", str(card), "--out", str(out), "--quiet"],
           "hold more than tensors", "use safetensors weights")
    assert not out.exists() or not list(out.rglob("*.parquet"))


def test_a_checkpoint_saved_in_float16_is_run_in_float32(tmp_path, tiny_vit_dir):
    import shutil

    import transformers

    from harness.backbones.load import load_backbone
    from harness.backbones.resolve import resolve_model
    from harness.specs.model_card import ModelCard

    shutil.copytree(tiny_vit_dir, tmp_path / "vit")
    transformers.ViTModel.from_pretrained(str(tmp_path / "vit")).half().save_pretrained(tmp_path / "vit")
    bb = load_backbone(resolve_model(ModelCard(name="h", id=str(tmp_path / "vit"), modality="image", pooling="cls")),
                       device=torch.device("cpu"))
    assert {p.dtype for p in bb.model.parameters()} == {torch.float32}


def test_an_image_classifier_under_a_text_card_says_so(tmp_path, capsys, tiny_vit_dir):
    import transformers

    vit = transformers.ViTForImageClassification.from_pretrained(str(tiny_vit_dir), num_labels=2,
                                                                  id2label={0: "negative", 1: "positive"})
    vit.config.architectures = ["ViTForImageClassification"]
    vit.save_pretrained(tmp_path / "vit")
    capsys.readouterr()
    card = _yaml(tmp_path / "c.yaml", {"id": str(tmp_path / "vit"), "kind": "classifier", "modality": "text"})
    out = tmp_path / "out"
    _fails(capsys, ["run", str(_sst_task(tmp_path)), "--model", str(card), "--out", str(out), "--quiet"],
           "modality = 'text':", "is an image classifier (ViTForImageClassification)", "set modality: image")
    assert not out.exists() or not list(out.rglob("*.parquet"))


def test_the_doc_states_the_logits_probe_the_code_uses():
    """docs/finetuned.md said 32 task inputs; the probe is up to 16 members plus up to 16 non-members."""
    import inspect
    import re

    from harness.pipeline import stages

    src = inspect.getsource(stages.checkpoint_stage)
    assert "split.member_inputs[:16] + split.nonmember_inputs[:16]" in src
    doc = re.sub(r"\s+", " ", (Path(__file__).parents[1] / "docs" / "finetuned.md").read_text(encoding="utf-8"))
    assert "the first 16 members and the first 16 non-members drawn" in doc and "28 with 6 members per class" in doc
    assert "on 32 of the task's inputs" not in doc
