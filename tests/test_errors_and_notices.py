"""What is not bad input: an internal error (exit 3, one line, the traceback in a log), notices of cards and tasks
that shadow the project's own or turn on remote code, result file names, errors that survive Ray's pickling."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness.cli import EXIT_INTERNAL, main
from harness.errors import HarnessError
from harness.store.store import ResultStore
from tests.conftest import ROOT
from tests.test_bad_input import _image_task, _yaml


def test_internal_error_is_one_line_exit_3_with_a_traceback_log(tmp_path, capfd, monkeypatch):
    """A bug (not bad input) names the verb and the stage, and where the traceback went."""
    logs = tmp_path / "logs"
    monkeypatch.setenv("RECON_HARNESS_LOGS", str(logs))
    monkeypatch.setenv("RECON_HARNESS_CACHE", str(tmp_path / "cache"))

    def broken(*a, **k):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr("harness.data.split._class_ids", broken)
    out = tmp_path / "out"
    code = main(["run", str(_yaml(tmp_path, _image_task())), "--out", str(out), "--quiet"])
    err = capfd.readouterr().err.strip().splitlines()
    assert code == EXIT_INTERNAL == 3, err
    assert len(err) == 1 and err[0].startswith("recon-harness: internal error in run, stage data: RuntimeError: boom ("), err
    log = Path(err[0].rsplit("traceback: ", 1)[1].rstrip(")"))
    assert log.parent == logs and "Traceback" in log.read_text(encoding="utf-8") and "second line" in log.read_text(encoding="utf-8")
    assert log.stat().st_mode & 0o077 == 0  # a traceback can quote the data: not for other users of the temp dir
    assert not out.exists()


def test_internal_error_of_another_verb(tmp_path, capfd, monkeypatch):
    monkeypatch.setenv("RECON_HARNESS_LOGS", str(tmp_path / "logs"))
    monkeypatch.setattr("harness.cli.validate.validate_file", lambda path: 1 / 0)
    assert main(["validate", str(ROOT / "tasks" / "quickstart.yaml")]) == 3
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "internal error in validate: ZeroDivisionError" in err[0] and "traceback: " in err[0]


def test_shadowing_cards_and_tasks_are_announced(tmp_path, capfd, monkeypatch):
    """./models/identity.yaml in the working directory overrides the project's card: say so, once."""
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "identity.yaml").write_text(
        "id: identity\nrevision: none\nmodality: image\npooling: flatten\ntrust_remote_code: true\n"
    )
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "quickstart.yaml").write_text(yaml.safe_dump(_image_task()))
    monkeypatch.chdir(tmp_path)
    from harness.registry import MODELS, TASKS

    monkeypatch.setattr("harness.registry._ANNOUNCED", set())
    assert MODELS.get("identity").trust_remote_code
    MODELS.get("identity")
    TASKS.get("quickstart")
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 2, err
    assert "model card 'identity'" in err[0] and str(tmp_path / "models" / "identity.yaml") in err[0]
    assert str(ROOT / "models" / "identity.yaml") in err[0] and "shadows" in err[0]
    assert "task 'quickstart'" in err[1] and str(ROOT / "tasks" / "quickstart.yaml") in err[1]
    # `ls tasks NAME` shows the shadowing file and says, as `run NAME` does, that it shadows the project's own
    from harness.cli import main

    monkeypatch.setattr("harness.registry._ANNOUNCED", set())
    assert main(["ls", "tasks", "quickstart"]) == 0
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "task 'quickstart'" in err[0] and "shadows" in err[0], err


def test_a_shadowing_remote_code_card_is_announced_before_a_run(tmp_path, capfd, monkeypatch):
    """The issue's scenario: ./models/identity.yaml turns on trust_remote_code; `run` says so before any stage."""
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "identity.yaml").write_text(
        "id: identity\nrevision: none\nmodality: image\npooling: flatten\ntrust_remote_code: true\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RECON_HARNESS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr("harness.registry._ANNOUNCED", set())

    def stop(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr("harness.cli.run.run_unit", stop)
    assert main(["run", str(_yaml(tmp_path, _image_task())), "--out", str(tmp_path / "out"), "--quiet"]) == 130
    err = capfd.readouterr().err.strip().splitlines()
    assert "shadows" in err[0] and "identity.yaml" in err[0], err
    assert any("warning" in line and "trust_remote_code: true" in line and "'identity'" in line for line in err), err


def test_remote_code_card_is_named_by_validate_and_run(tmp_path, capfd, monkeypatch):
    card = tmp_path / "remote.yaml"
    card.write_text("id: some-org/custom-model\nmodality: image\ntrust_remote_code: true\n")
    assert main(["validate", str(card)]) == 0
    err = capfd.readouterr().err
    assert "warning" in err and "'remote'" in err and "trust_remote_code: true" in err
    task = _yaml(tmp_path, _image_task(model=str(card)))
    assert main(["validate", str(task)]) == 0
    assert "trust_remote_code: true" in capfd.readouterr().err
    from harness.cli.preflight import warn_remote_code
    from harness.registry import MODELS

    warn_remote_code(MODELS.get(str(card)))
    assert "some-org/custom-model" in capfd.readouterr().err


def test_result_file_names_are_checked(tmp_path):
    """Head and table file names of a unit go through one check: no hidden, no unsafe names."""
    from harness.store.store import safe_name

    assert safe_name("quickstart-identity-0123abcd-real") == "quickstart-identity-0123abcd-real"
    for bad in (".hidden-real", "a b", "naïve", "x/y", "a" * 300):
        with pytest.raises(HarnessError):
            safe_name(bad)
    with pytest.raises(HarnessError):
        ResultStore(tmp_path).path("victims", ".hidden")


def test_harness_error_survives_pickling():
    # Ray pickles a worker's exception to the driver: a sweep's failure row must keep the one line, not "unserializable"
    import pickle


    err = pickle.loads(pickle.dumps(HarnessError("head.lr", 1e9, "lower it", where="task.yaml")))
    assert isinstance(err, HarnessError) and (err.field, err.value, err.fix, err.where) == ("head.lr", 1e9, "lower it", "task.yaml")
    assert str(err) == "task.yaml: head.lr = 1000000000.0: lower it"


@pytest.mark.parametrize("raised, code, line", [
    (OSError(28, "No space left on device", "/out/matches/u.parquet"), 2,
     "recon-harness: error: /out/matches/u.parquet: No space left on device; free space or fix the permissions there, "
     "then rerun (finished units are kept; a unit cut short is done again)"),
    (OSError(30, "Read-only file system", "/out/heads/u-real.safetensors"), 2, None),
    (SystemExit(15), 130, "recon-harness: interrupted"),  # Ray's SIGTERM handler while the cluster starts
])
def test_what_the_machine_refused_is_one_line_not_an_internal_error(raised, code, line, monkeypatch, capsys):
    import harness.cli.ls as ls

    def refuse(args):
        raise raised

    monkeypatch.setattr(ls, "main", refuse)
    assert main(["ls", "models"]) == code
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "internal error" not in err[0], err
    assert line is None or err[0] == line, err


def test_ctrl_c_while_the_verbs_import_is_an_interrupt(monkeypatch, capsys):
    """build_parser imports every verb's module (torch, scipy: seconds): a Ctrl-C there printed a 30-line traceback."""
    import harness.cli as cli

    def slow_imports():
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", slow_imports)
    assert cli.main(["ls", "models"]) == 130
    assert capsys.readouterr().err.splitlines() == ["recon-harness: interrupted"]


def test_a_report_that_cannot_go_beside_its_results_names_the_flag_that_moves_it(tmp_path, monkeypatch, capsys):
    """Results on a read-only mount: the page's default place cannot be written; the line names --out."""
    from harness.store import store as store_module

    ResultStore(tmp_path / "res")
    (tmp_path / "res" / "victims").mkdir()

    def read_only(base, field, shown):
        raise HarnessError(field, shown, f"cannot write under {base} (Read-only file system); choose a writable path")

    monkeypatch.setattr(store_module, "_probe", read_only)
    assert main(["report", str(tmp_path / "res")]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("recon-harness: error: --out (default: RESULTS/report.html) = "), line


def test_a_terminal_that_is_not_utf8_gets_the_summary_and_the_rows(tmp_path, bert_card, monkeypatch):
    """PYTHONIOENCODING=ascii (or a C locale without UTF-8 mode): the summary's ellipsis and a member sentence's accents
    are shown as '?', not an internal error after the work that leaves no rows."""
    import io
    import sys

    from harness.cli import main
    from harness.store import ResultStore
    from tests.test_cli import _task

    out_bytes = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(out_bytes, encoding="ascii"))
    monkeypatch.setattr(sys, "stderr", io.TextIOWrapper(io.BytesIO(), encoding="ascii"))
    code = main(["run", str(_task(tmp_path, bert_card)), "--out", str(tmp_path / "o"), "--cache", str(tmp_path / "c"), "--no-evidence"])
    sys.stdout.flush()
    assert code == 0 and ResultStore(tmp_path / "o", create=False).read("victims").num_rows == 2
    assert "?" in out_bytes.getvalue().decode("ascii")  # the ellipsis of a member sentence cut short
