"""The parser of the top level and of every verb: a usage error is one line on stderr (exit 2) naming
the verb, the argument, the value and the fix; --help is argparse's own."""

from __future__ import annotations

import argparse
import ast
import difflib
import re
import shlex
import sys

from harness.errors import EXIT_BAD_INPUT, did_you_mean

# the fix for a value its type refused, by the type's name (argparse names a failed conversion by it)
FIXES = {
    "int": "give a whole number",
    "float": "give a number",
    "count": "give a whole number >= 1",
    "seconds": "give a number of seconds >= 0",
    "directory": "give a directory path",
    "file_path": "give a file path",
}


def count(value: str) -> int:
    """A whole number >= 1 (sweep --num-cpus, --max-in-flight)."""
    n = int(value)
    if n < 1:
        raise ValueError(value)
    return n


def seconds(value: str) -> float:
    """A duration >= 0."""
    s = float(value)
    if not s >= 0:
        raise ValueError(value)
    return s


def directory(value: str) -> str:
    """A directory path; an empty one is refused, not read as 'no value given' (the default)."""
    if not value:
        raise ValueError(value)
    return value


def file_path(value: str) -> str:
    """A file path; an empty one is refused, not read as 'no value given' (the default)."""
    if not value:
        raise ValueError(value)
    return value


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors; unrecognized arguments are named by the verb's own parser."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("exit_on_error", False)  # errors reach parse_known_args below, with their argument
        kwargs.setdefault("allow_abbrev", False)  # `--thr` is refused with its full name, not read as --threads:
        # an abbreviation in a cron line would change meaning (or stop parsing) when a flag is added
        super().__init__(*args, **kwargs)

    def parse_known_args(self, args=None, namespace=None):
        try:
            return super().parse_known_args(args, namespace)
        except argparse.ArgumentError as err:
            self.fail(*self.explain(err))

    def parse_args(self, args=None, namespace=None):
        namespace, extra = self.parse_known_args(args, namespace)
        if extra:  # the verb's parser names them: its flags are the ones to suggest
            parser = getattr(namespace, "_parser", self)
            parser.fail(parser.unrecognized(extra))
        return namespace

    def error(self, message: str):
        self.fail(message)

    def fail(self, text: str, see_help: bool = True):
        more = f"; see {self.prog} --help" if see_help else ""
        print(f"{self.prog}: error: {text}{more}".replace("\n", " "), file=sys.stderr)
        self.exit(EXIT_BAD_INPUT)

    def explain(self, err: argparse.ArgumentError) -> tuple[str, bool]:
        """`NAME = VALUE: what is wrong; the fix` for a refused value, else argparse's own words (and
        whether to point at --help)."""
        name, message = err.argument_name, err.message
        refused = re.match(r"invalid choice: (.*) \(choose from", message)
        action = next((a for a in self._actions if name in ("/".join(a.option_strings), a.metavar, a.dest)), None)
        if refused and name and action is not None and action.choices:
            choices = [str(c) for c in action.choices]
            hint = did_you_mean(ast.literal_eval(refused[1]), choices)
            return f"{name} = {refused[1]}: not one of the choices{hint}; give one of {', '.join(choices)}", False
        typed = re.fullmatch(r"invalid (\w+) value: (.*)", message)
        if typed:
            return f"{name} = {typed[2]}: {FIXES.get(typed[1], f'give a valid {typed[1]}')}", False
        return (f"{name}: {message}" if name else message), True

    def unrecognized(self, extra: list[str]) -> str:
        flag = next((a.split("=")[0] for a in extra if a.startswith("--")), None)
        names = {o.lstrip("-"): o for o in self._option_string_actions}  # compared without the dashes all share
        close = difflib.get_close_matches(flag.lstrip("-"), list(names), n=1) if flag else []
        hint = f" (did you mean {names[close[0]]}?)" if close else ""
        return f"unrecognized argument{'s' if len(extra) > 1 else ''} {shlex.join(extra)}{hint}"
