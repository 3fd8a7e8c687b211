"""`recon-harness check`: one line per check, WARN does not fail, FAIL exits 1, unknown names exit 2."""

from __future__ import annotations

from harness.cli import check as check_mod
from harness.cli import main


def test_cheap_checks_pass_one_line_each(capsys):
    rc = main(["check", "python", "torch", "chromium"])
    out = capsys.readouterr().out.splitlines()
    assert rc == 0 and len(out) == 4 and out[-1] == "all checks passed"
    assert out[0].startswith("OK    python") and out[1].startswith("OK    torch")
    assert out[2].split()[0] in ("OK", "WARN") and out[2].split()[1] == "chromium"  # missing chromium only warns


def test_a_failing_check_is_one_line_and_exit_1(capsys, monkeypatch):
    def broken() -> str:
        raise ImportError("no module named nothing\nsecond line")

    monkeypatch.setitem(check_mod.CHECKS, "broken", broken)
    rc = main(["check", "python", "broken"])
    out = capsys.readouterr().out.splitlines()
    assert rc == 1 and out[1] == "FAIL  broken    ImportError: no module named nothing" and out[-1] == "1 check(s) failed"


def test_unknown_check_is_bad_input(capsys):
    assert main(["check", "rey"]) == 2
    assert "did you mean 'ray'" in capsys.readouterr().err


def test_missing_compiler_only_warns(capsys, monkeypatch):
    """No C++ compiler: kkt's long runs stay eager, so the check warns and names the install."""
    monkeypatch.setenv("CXX", "no-such-c++-compiler")
    rc = main(["check", "compiler"])
    out = capsys.readouterr().out.splitlines()
    assert rc == 0 and out[0].startswith("WARN  compiler") and "apt-get install g++" in out[0]


def test_the_ray_check_starts_a_loopback_cluster_without_rays_auth_note():
    """Ray notes on every new local cluster that it turned token authentication on; the harness drops that line."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("RAY_AUTH_MODE", None)
    got = subprocess.run([sys.executable, "-m", "harness", "check", "ray"], capture_output=True, text=True, env=env, timeout=300)
    assert got.returncode == 0 and got.stdout.startswith("OK    ray"), got.stdout + got.stderr
    assert "Token authentication" not in got.stderr, got.stderr
