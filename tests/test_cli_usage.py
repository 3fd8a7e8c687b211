"""The CLI's own surface: help, usage errors (one line naming the verb and the fix), `python -m harness`,
--threads auto, and `validate` / `ls` on task and card files. Runs end to end: test_cli.py."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from harness.cli import main
from tests.conftest import ROOT


def test_validate_and_ls(capsys):
    assert main(["validate", str(ROOT / "models"), str(ROOT / "tasks" / "quickstart.yaml")]) == 0
    assert "ok" in capsys.readouterr().out
    assert main(["ls", "models"]) == 0 and "dinov2-small" in capsys.readouterr().out
    assert main(["ls", "tasks"]) == 0 and "quickstart" in capsys.readouterr().out
    assert main(["ls"]) == 0
    listed = capsys.readouterr().out
    assert all(w in listed for w in ("models", "tasks", "attacks", "transforms", "trainers"))


def test_validate_reports_bad_files(tmp_path, capsys):
    p = tmp_path / "bad.yaml"
    p.write_text("id: org/m\nmodality: text\nnormalise: true\n")
    (tmp_path / "models").mkdir()
    q = tmp_path / "models" / "bad2.yaml"
    q.write_text("id: org/m\nmodality: text\nnormalise: true\n")
    assert main(["validate", str(q)]) == 2
    assert "did you mean 'normalize'" in capsys.readouterr().err


def test_python_dash_m_entry_point():
    r = subprocess.run([sys.executable, "-m", "harness", "--version"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0 and "recon-harness" in r.stdout


def test_threads_auto_takes_the_idle_cores_and_at_least_one(monkeypatch):
    """`--threads auto`: the usable cores less the busy ones (from two /proc/stat samples), never below 1."""
    import torch

    from harness import cpu
    from harness.cli.run import set_threads

    before = "cpu  100 0 100 800 0 0 0 0 0 0\ncpu0 1 2 3\n"
    after = "cpu  400 0 100 1100 0 0 0 0 0 0\n"  # 300 busy of 600 jiffies: half the machine
    assert cpu.cpu_times(before) == (200, 1000) and cpu.cpu_times(after) == (500, 1600)
    samples = iter([before, after])
    monkeypatch.setattr(cpu, "STAT", type("Stat", (), {"read_text": lambda self: next(samples)})())
    monkeypatch.setattr(cpu.time, "sleep", lambda s: None)
    monkeypatch.setattr(cpu.os, "cpu_count", lambda: 4)
    assert cpu.busy_cores() == 2.0
    monkeypatch.setattr(cpu, "usable_cores", lambda: 4)
    monkeypatch.setattr(cpu, "busy_cores", lambda sample_s=0.3: 2.0)
    n = torch.get_num_threads()
    try:
        assert set_threads("auto") == 2 and torch.get_num_threads() == 2
        monkeypatch.setattr(cpu, "busy_cores", lambda sample_s=0.3: 7.5)  # more busy than usable: still one thread
        assert set_threads("auto") == 1 and torch.get_num_threads() == 1
        assert set_threads("3") == 3
    finally:
        torch.set_num_threads(n)


def test_a_container_s_cpu_quota_bounds_the_usable_cores(tmp_path, monkeypatch):
    from harness import cpu

    quota = tmp_path / "cpu.max"
    assert cpu.cpu_quota(quota) is None  # no cgroup v2 file: no quota
    quota.write_text("max 100000\n")
    assert cpu.cpu_quota(quota) is None
    quota.write_text("150000 100000\n")  # one and a half cores: two threads may run
    assert cpu.cpu_quota(quota) == 2
    monkeypatch.setattr(cpu, "CPU_MAX", quota)
    quota.write_text("100000 100000\n")
    assert cpu.usable_cores() == 1


def test_every_verb_has_a_whole_sentence_in_the_top_level_help():
    """The verb list shows each module's first paragraph, not its first line (a sentence may wrap in the source)."""
    from harness.cli import VERBS, build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "verb")
    helps = {c.dest: c.help for c in sub._choices_actions}
    assert set(helps) == set(VERBS)
    for verb, text in helps.items():
        assert text.endswith("."), (verb, text)


USAGE_ERRORS = {
    "unknown flag, a typo": (
        ["run", "tasks/quickstart.yaml", "--no-evidnce"],
        "recon-harness run: error: unrecognized argument --no-evidnce (did you mean --no-evidence?); see recon-harness run --help",
    ),
    "unknown flag": (["run", "tasks/quickstart.yaml", "--foo"], "recon-harness run: error: unrecognized argument --foo; see recon-harness run --help"),
    "an abbreviated flag is not read as the flag": (
        ["run", "tasks/quickstart.yaml", "--thr", "1"],
        "recon-harness run: error: unrecognized arguments --thr 1 (did you mean --threads?); see recon-harness run --help",
    ),
    "invalid choice": (
        ["leaderboard", "DIR", "--format", "xlsx"],
        "recon-harness leaderboard: error: --format = 'xlsx': not one of the choices; give one of md, csv, json, html, parquet",
    ),
    "invalid type": (["sweep", "S", "--num-cpus", "abc"], "recon-harness sweep: error: --num-cpus = 'abc': give a whole number >= 1"),
    "missing required flag": (
        ["finetune", "TASK"],
        "recon-harness finetune: error: the following arguments are required: --out; see recon-harness finetune --help",
    ),
    "missing value": (["run", "TASK", "--out"], "recon-harness run: error: --out: expected one argument; see recon-harness run --help"),
    "unknown verb": (
        ["rn"],
        "recon-harness: error: VERB = 'rn': not one of the choices (did you mean 'run'?); "
        "give one of run, validate, ls, sweep, leaderboard, report, check, finetune",
    ),
}


@pytest.mark.parametrize("case", list(USAGE_ERRORS), ids=list(USAGE_ERRORS))
def test_usage_errors_are_one_line_naming_the_verb_and_the_fix(case, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv, line = USAGE_ERRORS[case]
    assert main(argv) == 2
    printed = capsys.readouterr()
    assert printed.err.splitlines() == [line] and printed.out == ""
    assert not list(tmp_path.iterdir())


def test_help_is_argparse_own(capsys):
    assert main(["run", "--help"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("usage: recon-harness run [-h]") and "--no-evidence" in printed


def test_validate_warns_of_data_not_there_yet_and_refuses_an_empty_path(tmp_path, capsys):
    task = tmp_path / "t.yaml"
    task.write_text(yaml.safe_dump({"model": "identity", "data": {"source": "nothere.parquet", "input_column": "img"},
                                    "classes": ["a", "b"], "per_class": 3}))
    assert main(["validate", str(task)]) == 0  # valid: the data may be written later (finetune's is)
    got = capsys.readouterr()
    assert got.out.startswith(f"ok    {task}")
    assert f"data.source = 'nothere.parquet': no such file or directory yet (relative to {tmp_path}" in got.err
    assert main(["validate", ""]) == 2  # Path('') would be the working directory
    assert "paths = '': give a YAML file or a folder, not an empty path" in capsys.readouterr().err

