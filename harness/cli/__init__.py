"""`recon-harness VERB ...`: one module per verb, registered in VERBS."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from harness import __version__
from harness.errors import EXIT_BAD_INPUT, HarnessError

# verb -> module under harness.cli exposing add_arguments(parser) and main(args) -> int
VERBS = {
    "run": "harness.cli.run",
    "validate": "harness.cli.validate",
    "ls": "harness.cli.ls",
    "sweep": "harness.cli.sweep",
    "leaderboard": "harness.cli.leaderboard",
    "report": "harness.cli.report",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="recon-harness",
        description="Measure how much of a head's private training data can be rebuilt from its weights.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for verb, module in VERBS.items():
        mod = importlib.import_module(module)
        p = sub.add_parser(verb, help=mod.__doc__.strip().splitlines()[0], description=mod.__doc__)
        mod.add_arguments(p)
        p.set_defaults(_main=mod.main)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = build_parser().parse_args(argv)
    try:
        return int(args._main(args) or 0)
    except HarnessError as exc:
        print(f"recon-harness: error: {exc.line()}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("recon-harness: interrupted", file=sys.stderr)
        return 130
