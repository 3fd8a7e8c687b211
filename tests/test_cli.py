"""The CLI end to end on a tiny case (run, its rows, report and leaderboard files), and each bad input to `run`: exit 2,
one line, no rows written. Help, usage errors and `validate`: test_cli_usage.py."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml

from harness.cli import main
from harness.store import ResultStore
from tests.conftest import ROOT, SST2

TINY_ATTACK = {"name": "kkt-reference", "params": {"m": 8, "restarts": 1, "iterations": 30, "lr": 1e-4, "init_scale": 0.01, "lambda_min": 0.1, "alpha": 20}}


def _task(tmp_path: Path, card: Path, **over) -> Path:
    spec = {
        "model": str(card),
        "data": {"source": str(SST2), "format": "parquet", "split": "train", "input_column": "sentence", "label_column": "label"},
        "classes": ["negative", "positive"],
        "per_class": 4,
        "nonmembers": 20,
        "head": {"widths": [32], "optimizer": "adam", "lr": 0.01, "max_steps": 200, "target_loss": 1e-3},
        "attack": TINY_ATTACK,
    }
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(spec.get(k), dict):
            spec[k] = {**spec[k], **v}
        else:
            spec[k] = v
    p = tmp_path / "tiny.yaml"
    p.write_text(yaml.safe_dump(spec))
    return p


def _run(*args, evidence: bool = False) -> int:
    """`recon-harness run` in-process; selection/inversion only where a test asks (they have their own tests)."""
    return main(["run", *map(str, args), "--quiet", *([] if evidence else ["--no-evidence"])])


def test_run_writes_every_table_with_provenance(tmp_path, bert_card, capsys):
    out = tmp_path / "out"
    assert _run(_task(tmp_path, bert_card), "--out", out, "--cache", tmp_path / "cache", evidence=True) == 0
    assert (out / "report.html").is_file()
    store = ResultStore(out, create=False)
    victims = store.read("victims").to_pylist()
    assert {v["victim"] for v in victims} == {"real", "null"}
    real = next(v for v in victims if v["victim"] == "real")
    assert real["n_members"] == 8 and real["n_nonmembers"] == 20 and real["embed_dim"] == 32
    assert real["n_control"] == 20  # rows start: every non-member is in the FPR control
    assert 0 <= real["in_row_space"] <= 8  # members W1's row space holds (diagnostics/row_space.py)
    assert 0 <= real["own_pattern"] <= 8  # members with an activation pattern of their own (diagnostics/patterns.py)
    assert real["head_dims"] == [32, 32, 1] and real["train_acc"] == 1.0
    assert real["revision"].startswith("local-") and '"torch"' in real["versions"] and real["seed"] == 0  # + its files' hash
    versions = json.loads(real["versions"])
    assert {"tokenizers", "safetensors"} <= set(versions)  # the tokenizer's version changes text embeddings
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode == 0:  # a git checkout: the commit the code came from, and whether it was changed
        assert versions["recon-harness-source"].removesuffix("+dirty") == head.stdout.strip()[:12]
    settings = json.loads(real["settings"])
    assert settings["data_digest"] and settings["head_digest"] is None  # the local data's content; no given head
    assert 0 <= real["tpr_at_fpr"] <= 1 and real["n_candidates"] == 8
    # the public floor: counts of members, the ones beyond it among those matched
    assert 0 <= real["public_good_at_0_8"] <= 8 and 0 <= real["good_at_0_8_beyond_public"] <= real["good_at_0_8"]
    assert real["public_good_ssim"] is None and real["good_ssim_beyond_public"] is None  # a text victim
    assert real["good_at_0_8_first_half"] is None and real["good_ssim_first_half"] is None  # one run: no half to compare
    assert real["polish_steps"] is None and real["polish_residual_before"] is None  # kkt-reference: no polish
    assert store.read("matches").num_rows == 2 * (8 + 20)
    members = [r for r in store.read("matches").to_pylist() if r["kind"] == "member"]
    by_victim = {v: {r["source_row"]: r["label"] for r in members if r["victim"] == v} for v in ("real", "null")}
    assert by_victim["real"] == by_victim["null"]  # a member's own label, whichever victim it was scored against
    assert store.read("candidates").num_rows == 16 and store.read("attack_runs").num_rows == 2
    assert (out / real["head_path"]).is_file()
    printed = capsys.readouterr().out
    assert "unit" in printed  # the summary, with what each victim gave up in words, as the report has it
    flat = " ".join(printed.split())
    assert flat.count("20 non-members resolve no false-positive rate below 5%, not 1%") == 1  # one note for both victims
    assert "selection~member" in flat and "inversion~selection" in flat  # each inversion line's two cosines, named
    assert "top-20" in flat and "(of at most 0.40: 8 members)" in flat  # 8 members cannot fill a top 20
    assert f"wrote {out} (unit " in flat and "none+paper): rows candidates 16," in flat  # which unit, which recipe
    from harness.scoring.verdict import verdict

    for v in victims:
        said = verdict(v["n_members"], v["members_passed"], v["fpr"], v["good_at_0_8"], v["good_ssim"],
                       public_good=v["public_good_at_0_8"], beyond_public=v["good_at_0_8_beyond_public"],
                       n_control=v["n_control"])
        assert " ".join(said.split()[:6]) in " ".join(printed.split())
    # a second identical run hits the embedding cache and replaces (not duplicates) the unit's rows
    assert _run(_task(tmp_path, bert_card), "--out", out, "--cache", tmp_path / "cache") == 0
    victims = ResultStore(out, create=False).read("victims").to_pylist()
    assert len(victims) == 2 and all(v["embed_cache_hit"] for v in victims)


def _bad(tmp_path, capsys, *args) -> str:
    out = tmp_path / "out-bad"
    code = _run(*args, "--out", out, "--cache", tmp_path / "cache")
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("recon-harness: error:")
    assert not out.exists(), list(out.rglob("*"))  # nothing written: not even the folder, or the writer's lock
    return err[0]


def test_bad_inputs_exit_2_with_one_line_and_no_rows(tmp_path, bert_card, capsys):
    assert "no such file" in _bad(tmp_path, capsys, tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("model: [oops\n")
    assert "YAML syntax error" in _bad(tmp_path, capsys, broken)
    assert "did you mean 'quickstart'" in _bad(tmp_path, capsys, "quickstrat")
    assert "did you mean 'dinov2-small'" in _bad(tmp_path, capsys, _task(tmp_path, bert_card), "--model", "dinov2-smal")
    line = _bad(tmp_path, capsys, _task(tmp_path, bert_card, data={"input_column": "text"}))
    assert "data.input_column" in line and "sentence" in line
    line = _bad(tmp_path, capsys, _task(tmp_path, bert_card, per_class=500))
    assert "per_class" in line and "fewer than" in line
    line = _bad(tmp_path, capsys, _task(tmp_path, bert_card, classes=["negative", "postive"]))
    assert "did you mean 'positive'" in line
    line = _bad(tmp_path, capsys, _task(tmp_path, bert_card, attack={"name": "kt"}))
    assert "kt" in line
    line = _bad(tmp_path, capsys, _task(tmp_path, bert_card, attack={"name": "kkt", "params": {"layer_weights": [1, 0, 1]}}))
    assert "attack.params.layer_weights = [1, 0, 1]" in line and "one weight per layer of the head (2)" in line
    line = _bad(tmp_path, capsys, _task(tmp_path, bert_card), "--threads", "0")
    assert "--threads" in line and "0" in line and ">= 1" in line
    line = _bad(tmp_path, capsys, _task(tmp_path, bert_card), "--threads", "many")
    assert "--threads" in line and "many" in line and "or auto" in line
    assert "unknown model card" in _bad(tmp_path, capsys, _task(tmp_path, bert_card, model="nobody/not-cached"))
    uncached = tmp_path / "uncached.yaml"
    uncached.write_text(yaml.safe_dump({"id": "nobody/not-cached", "modality": "text"}))
    line = _bad(tmp_path, capsys, _task(tmp_path, uncached))
    assert "not in the Hugging Face cache" in line and "hf download nobody/not-cached" in line
    # a victim whose training diverges (here: a step far past stability) is named by its step size, with nothing written
    line = _bad(tmp_path, capsys, _task(tmp_path, bert_card, head={"loss": "mse", "optimizer": "gd", "lr": 1e9, "max_steps": 30}))
    assert "head.lr = 1000000000.0" in line and "diverged" in line and "lower it" in line


def test_hub_id_not_in_cache_and_bad_revision(tmp_path, tiny_bert_dir, hub_repo, capsys):
    rev = hub_repo(tiny_bert_dir, "tiny-org/bert-cli")
    card = tmp_path / "hubcard.yaml"
    card.write_text(yaml.safe_dump({"id": "tiny-org/bert-cli", "revision": "f" * 40, "modality": "text", "pooling": "mean"}))
    line = _bad(tmp_path, capsys, _task(tmp_path, card))
    assert "revision" in line and rev in line


def test_output_dir_of_another_schema_version(tmp_path, bert_card, capsys):
    out = tmp_path / "out-bad"
    out.mkdir()
    (out / "_recon_harness.json").write_text('{"schema_version": 0}')
    code = _run(_task(tmp_path, bert_card), "--out", out)
    err = capsys.readouterr().err
    assert code == 2 and "--out = " in err and "schema version 0" in err and "use a new output directory" in err, err
    assert not list(out.rglob("*.parquet"))


def test_threads_above_the_usable_cores_are_refused(tmp_path, bert_card, capsys):
    """More threads than the cores this process may use is refused before any work; as many is accepted."""
    import torch

    from harness.cli.run import set_threads
    from harness.cpu import usable_cores

    cores = usable_cores()
    line = _bad(tmp_path, capsys, _task(tmp_path, bert_card), "--threads", cores + 1)
    plural = "s" if cores > 1 else ""
    assert line == f"recon-harness: error: --threads = {cores + 1}: this machine has {cores} usable core{plural}; give at most {cores}, or auto"
    assert not (tmp_path / "out-bad").exists()
    n = torch.get_num_threads()
    try:
        assert set_threads(str(cores)) == cores
    finally:
        torch.set_num_threads(n)


def test_leaderboard_format_follows_the_out_extension(tmp_path, bert_card, capsys):
    """No --format: the --out file's extension names it (one that names no format is refused); a --format that
    contradicts it is refused."""
    from harness.leaderboard import build, render

    res = tmp_path / "res"
    assert _run(_task(tmp_path, bert_card), "--out", res, "--cache", tmp_path / "cache") == 0
    rows = build(str(res))
    for name, fmt in (("lb.csv", "csv"), ("lb.json", "json"), ("lb.md", "md")):
        assert main(["leaderboard", str(res), "--out", str(tmp_path / name)]) == 0
        assert (tmp_path / name).read_bytes() == render(rows, fmt), name
    capsys.readouterr()
    assert main(["leaderboard", str(res), "--format", "md", "--out", str(tmp_path / "x.csv")]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"recon-harness: error: --format = 'md': contradicts --out {tmp_path / 'x.csv'} (a .csv file); drop --format, or name the file .md"
    ]
    assert not (tmp_path / "x.csv").exists()
    assert main(["leaderboard", str(res), "--format", "parquet"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "recon-harness: error: --format = 'parquet': writes a binary file, not text for a terminal; give --out FILE.parquet"
    ]


def test_a_run_whose_attack_diverged_writes_its_rows_and_report_and_says_so(tmp_path, bert_card, capsys):
    """Every run of the attack diverges (a step of 1e6): no candidate, no threshold. The rows say 'not measured'
    (null TPR, not 0), the report is written, and the run exits 0 (it wrote its results: not a bad input)."""
    out = tmp_path / "out"
    attack = {"name": "kkt", "params": {"m": 4, "restarts": 2, "iterations": 50, "lr": 1e6, "optimizer": "sgd"}}
    assert _run(_task(tmp_path, bert_card, attack=attack), "--out", out, "--cache", tmp_path / "c", evidence=True) == 0
    victims = ResultStore(out, create=False).read("victims").to_pylist()
    assert all(v["tpr_at_fpr"] is None and v["threshold"] is None for v in victims)
    # nor are members counted: null, not 0 members passing or reconstructed
    for key in ("members_passed", "good_at_0_8", "good_at_0_9", "good_at_0_8_beyond_public"):
        assert all(v[key] is None for v in victims), key
    assert "nothing was measured" in " ".join(capsys.readouterr().out.split())
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "nothing was measured" in page and "<td>- / - of 8</td>" in page


def test_the_head_announced_is_the_head_trained(tmp_path, bert_card, capsys):
    """sklearn-mlp brings its own 100 hidden units: the progress names them, not the task's widths."""
    task = _task(tmp_path, bert_card, null_victim=False, victim={"transform": "standardize", "trainer": "sklearn-mlp",
                                                                  "params": {"max_iter": 5}})
    assert main(["run", str(task), "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "c"), "--no-evidence"]) == 0
    said = " ".join(capsys.readouterr().err.split())
    assert "head [32, 100, 1] (relu)" in said and "[32, 32]" not in said
    # --recipe of the task's own trainer keeps its parameters (they were dropped for the trainer's defaults)
    assert main(["run", str(task), "--out", str(tmp_path / "out2"), "--cache", str(tmp_path / "c"), "--no-evidence",
                 "--quiet", "--recipe", "none+sklearn-mlp"]) == 0
    (row,) = ResultStore(tmp_path / "out2", create=False).read("victims").to_pylist()
    assert json.loads(row["trainer_params"]) == {"max_iter": 5} and row["recipe"] == "none+sklearn-mlp"
    # the rows' settings say what ran: --no-evidence (the id stays the task's)
    victims = ResultStore(tmp_path / "out", create=False).read("victims").to_pylist()
    assert {json.loads(v["settings"])["task"]["evidence"]["enabled"] for v in victims} == {False}


def test_rows_record_the_corpus_a_run_added(tmp_path, bert_card):
    task = _task(tmp_path, bert_card, null_victim=False, evidence={"invert_top": 1, "invert_members": 0, "word_passes": 0,
                                                                   "word_relax_steps": 0})
    corpus = str(ROOT / "tests" / "fixtures" / "sst2-train-400.parquet")
    assert _run(task, "--out", tmp_path / "out", "--cache", tmp_path / "c", "--corpus", corpus, evidence=True) == 0
    (victim,) = ResultStore(tmp_path / "out", create=False).read("victims").to_pylist()
    evidence = json.loads(victim["settings"])["task"]["evidence"]
    assert evidence["enabled"] is True and evidence["corpus"] == [corpus]
    # the same unit again without evidence: the report written before is rebuilt (it showed the retired inversions)
    assert "Sentences: nearest member" in (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert _run(task, "--out", tmp_path / "out", "--cache", tmp_path / "c") == 0
    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "Sentences: nearest member" not in page and "No inversions stored for this unit" in page


def test_an_output_inside_a_ray_jobs_working_copy_is_refused(tmp_path, monkeypatch, capsys):
    """`ray job submit --working-dir .` runs the job in Ray's unpacked copy of the folder, removed later (a new upload
    gets a new one): a relative --out (or the default results/NAME) there would be lost and never resumed."""
    job = tmp_path / "session_1" / "runtime_resources" / "working_dir_files" / "_ray_pkg_0123"
    job.mkdir(parents=True)
    monkeypatch.chdir(job)
    sweep = str(ROOT / "tasks" / "sweeps" / "small-cpu.yaml")
    assert main(["sweep", sweep, "--dry-run"]) == 2  # the sweep's own out: results/small-cpu
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("recon-harness: error: out = 'results/small-cpu': is relative to Ray's"), err
    assert main(["run", str(ROOT / "tasks" / "quickstart.yaml"), "--out", "res"]) == 2
    assert "--out = 'res': is relative to Ray's temporary copy" in capsys.readouterr().err
    assert main(["sweep", sweep, "--dry-run", "--out", str(tmp_path / "kept")]) == 0  # an absolute path is kept
    assert not list(job.iterdir())


def test_ls_models_shows_the_revision_a_run_records_for_a_local_directory(tmp_path, bert_card, tiny_bert_dir):
    from harness.backbones.resolve import local_revision
    from harness.cli.ls import model_rows
    from harness.registry import MODELS

    missing = tmp_path / "missing.yaml"
    missing.write_text(yaml.safe_dump({"id": str(tmp_path / "not-built"), "modality": "text", "pooling": "mean"}))
    header, rows = model_rows({"tiny-bert": bert_card, "missing": missing})
    revision = {r[0]: r[header.index("revision")] for r in rows}
    assert revision["tiny-bert"] == local_revision(tiny_bert_dir, MODELS.load_file(bert_card)) != "local"
    assert revision["missing"] == "local (not there yet)"


def test_data_text_is_printed_as_it_is_not_read_as_terminal_markup(tmp_path, bert_card, capsys):
    """Sentences (and paths) holding rich markup such as '[/]' crashed the summary (exit 3) or were altered."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(SST2)
    marked = [f"[/] [link=https://x.example]{s}[/link] [bold]" for s in table.column("sentence").to_pylist()]
    data = tmp_path / "[marked].parquet"
    pq.write_table(table.set_column(table.schema.get_field_index("sentence"), "sentence", pa.array(marked)), data)
    task = _task(tmp_path, bert_card, data={"source": str(data)})
    code = main(["run", str(task), "--out", str(tmp_path / "[out]"), "--no-evidence"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert f"data: {data}" in printed.err  # the progress lines (stderr), the summary (stdout)
    assert "[/] [link=https://x.example]" in printed.out and f"wrote {tmp_path / '[out]'}" in printed.out

