"""`recon-harness VERB ...`: one module per verb, registered in VERBS."""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import signal
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

from harness import __version__
from harness.cli.args import Parser
from harness.errors import EXIT_BAD_INPUT, HarnessError

EXIT_INTERNAL = 3  # an exception that is not a known bad input: one line, the traceback in a log file

# verb -> module under harness.cli exposing add_arguments(parser) and main(args) -> int
VERBS = {
    "run": "harness.cli.run",
    "validate": "harness.cli.validate",
    "ls": "harness.cli.ls",
    "sweep": "harness.cli.sweep",
    "leaderboard": "harness.cli.leaderboard",
    "report": "harness.cli.report",
    "check": "harness.cli.check",
    "finetune": "harness.cli.finetune",
}


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="recon-harness",
        description="Measure how much of a head's private training data can be rebuilt from its weights.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for verb, module in VERBS.items():
        mod = importlib.import_module(module)
        p = sub.add_parser(verb, help=" ".join(mod.__doc__.strip().split("\n\n")[0].split()), description=mod.__doc__)
        mod.add_arguments(p)
        p.set_defaults(_main=mod.main, _parser=p)  # _parser: the verb's parser names its unrecognized arguments
    return parser


# what the machine, not the input or the harness, refused: a full disk or quota, a read-only or forbidden path
ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    writable_anywhere()
    before = term_as_interrupt()  # first: a Ctrl-C or SIGTERM while the verbs' modules import is an interrupt too
    args = None
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as exc:  # --help or --version (0), or a usage error with its one line printed (2)
            return int(exc.code or 0)
        return int(args._main(args) or 0)
    except HarnessError as exc:
        print(f"recon-harness: error: {exc.line()}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("recon-harness: interrupted", file=sys.stderr)
        return 130
    except SystemExit as exc:
        if exc.code != signal.SIGTERM:
            raise
        # Ray's driver handler while it starts (before ours is set again): sys.exit(15) on SIGTERM
        print("recon-harness: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - anything else is a bug: one line, the traceback in a log
        if isinstance(exc, OSError) and exc.errno in ENVIRONMENT_ERRNOS:  # the machine refused, not a bug
            where = f"{exc.filename}: " if exc.filename else ""
            print(f"recon-harness: error: {where}{exc.strerror or exc}; free space or fix the permissions there, then "
                  "rerun (finished units are kept; a unit cut short is done again)", file=sys.stderr)
            return EXIT_BAD_INPUT
        print(internal_error_line(getattr(args, "verb", "cli"), exc, argv), file=sys.stderr)
        return EXIT_INTERNAL
    finally:
        if before is not None:
            signal.signal(signal.SIGTERM, before)  # in-process callers (tests, notebooks) get theirs back


def writable_anywhere() -> None:
    """A terminal or file that is not UTF-8 (PYTHONIOENCODING=ascii, a C locale without UTF-8 mode) gets '?' for what
    it cannot show (a member sentence's accents, the summary's ellipsis), not an error after the work is done."""
    for stream in (sys.stdout, sys.stderr):
        if (getattr(stream, "encoding", "") or "").lower().replace("-", "") != "utf8" and hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def term_as_interrupt():
    """SIGTERM (cron's and `ray job stop`'s stop) ends a verb as Ctrl-C does: 'interrupted', exit 130, resumable.
    Ray's driver installs a handler of its own when it connects, so a verb that connects calls this again after.
    Returns the handler it replaced (None off the main thread, where none can be set)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _interrupt)


# function in the call stack -> the stage it belongs to (the outermost one found names the stage)
STAGES = {
    "plan_unit": "plan", "load_split": "data", "load_rows": "data", "load_backbone": "embed",
    "write_unit": "write", "build_report": "report", "print_summary": "summary", "plan_sweep": "plan",
}


def stage_of(exc: BaseException) -> str | None:
    """The pipeline stage the exception came from (train, attack, score, evidence, ...), if any."""
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if "harness" in Path(code.co_filename).parts:
            if code.co_name.endswith("_stage"):
                return code.co_name.removesuffix("_stage")
            if code.co_name in STAGES:
                return STAGES[code.co_name]
        tb = tb.tb_next
    return None


def log_dir() -> Path:
    """Where tracebacks of internal errors go: $RECON_HARNESS_LOGS, else the system temp dir."""
    return Path(os.environ.get("RECON_HARNESS_LOGS") or tempfile.gettempdir())


def internal_error_line(verb: str, exc: BaseException, argv: list[str] | None = None) -> str:
    """Write the traceback to a log file; return the one line that names the verb, the stage and the log."""
    stage = stage_of(exc)
    where = f"{verb}, stage {stage}" if stage else verb
    text = str(exc).strip()
    msg = text.splitlines()[0] if text else ""
    msg = msg if len(msg) <= 300 else msg[:297] + "..."
    try:
        folder = log_dir()
        folder.mkdir(parents=True, exist_ok=True)
        log = folder / f"recon-harness-{verb}-{time.strftime('%Y%m%d-%H%M%SZ', time.gmtime())}-{os.getpid()}.log"  # UTC, as rows
        command = " ".join(["recon-harness", *(argv if argv is not None else sys.argv[1:])])
        body = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        # the owner's alone: a traceback can quote the data, and the system temp dir is shared
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8", errors="replace") as f:
            f.write(f"recon-harness {__version__}\ncommand: {command}\n\n{body}")
        saved = f"traceback: {log}"
    except OSError as err:
        saved = f"no traceback log: {err.strerror or err}"
    return f"recon-harness: internal error in {where}: {type(exc).__name__}: {msg} ({saved})"
