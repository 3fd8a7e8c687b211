"""Export the cross-model leaderboard of a results directory (md, csv, json, html, parquet) or push it to the Hub."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from harness.cli.args import file_path
from harness.errors import HarnessError
from harness.leaderboard import FORMATS, build, render, write
from harness.leaderboard.build import unlisted_failures
from harness.leaderboard.columns import NAMES
from harness.store.store import check_writable_file

HUB_NAME = re.compile(r"^[A-Za-z0-9][\w.\-]{0,95}$")


def add_arguments(p) -> None:
    p.add_argument("results", help="results directory (a sweep's or a run's --out)")
    p.add_argument("--format", choices=FORMATS, help="output format (default: --out's extension, which must name one "
                   "of these; md without --out)")
    p.add_argument("--out", type=file_path, help="write to this file, FILE.md|csv|json|html|parquet (default: stdout; "
                   "parquet needs --out)")
    p.add_argument("--sort", default="members_at_fpr", metavar="COLUMN", help=f"sort by ({', '.join(NAMES[:12])}, ...)")
    p.add_argument("--ascending", action="store_true", help="smallest first (default: largest first)")
    p.add_argument("--push-to-hub", metavar="ORG/NAME", help="also upload every format to this Hub dataset repo (a new "
                   "repo is created private; an existing one keeps its visibility)")
    p.add_argument("--public", action="store_true", help="with --push-to-hub: create a new repo public")
    p.add_argument("--failures", action="store_true", help="list the failures table instead: one line each, or in the "
                   "format --format or --out names (csv, json, parquet: every column, the traceback included)")


def _failures(results: str, fmt: str | None, out: str | None) -> int:
    """The failures table: one line each on stdout, or in a leaderboard format (--format, or --out's extension)."""
    from harness.leaderboard.export import render_failures
    from harness.store.store import ResultStore

    failures = ResultStore(results, create=False).read("failures")
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_bytes(render_failures(failures, fmt))
        print(f"wrote {failures.num_rows} failure(s) to {out}", file=sys.stderr)
        return 0
    if fmt:
        sys.stdout.write(render_failures(failures, fmt).decode())
    else:
        for r in failures.to_pylist():
            print(f"{r['unit_id']}\t{r['stage']}\t{r['victim'] or '-'}\t{r['shard'] if r['shard'] is not None else '-'}\t"
                  f"{r['error_type']}: {r['message']}")
    print(f"{failures.num_rows} failure(s)", file=sys.stderr)
    return 0


def check_push(repo_id: str) -> None:
    """Before anything is written: the repo id's shape, the network and a token (never printed)."""
    from harness.backbones.resolve import hub_offline

    parts = repo_id.split("/")
    if len(parts) != 2 or not all(HUB_NAME.match(p) for p in parts):
        raise HarnessError("--push-to-hub", repo_id, "expected ORG/NAME of a Hub dataset repo, e.g. my-org/recon-leaderboard")
    if hub_offline():
        raise HarnessError("--push-to-hub", repo_id, "HF_HUB_OFFLINE=1: pushing needs the network; unset it, or leave out --push-to-hub")
    from huggingface_hub import get_token

    if not get_token():
        raise HarnessError("--push-to-hub", repo_id, "no Hugging Face token: log in with `hf auth login` or set HF_TOKEN "
                           "(a token with write access to the dataset repo)")


def output_format(fmt: str | None, out: str | None) -> str | None:
    """--format, else the --out file's extension, which must name a format; md (None for --failures' lines) without
    either. A contradiction, an extension that names no format and parquet for the terminal are refused."""
    ext = Path(out).suffix.lstrip(".").lower() if out else ""
    if fmt and ext in FORMATS and ext != fmt:
        raise HarnessError("--format", fmt, f"contradicts --out {out} (a .{ext} file); "
                           f"drop --format, or name the file .{fmt}")
    if out and not fmt and ext not in FORMATS:
        what = f"its extension .{ext} names no format" if ext else "has no extension to name a format"
        raise HarnessError("--out", out, f"{what} ({', '.join(FORMATS)}); "
                           f"name the file {Path(out).stem}.md (or .csv, .json, .html, .parquet), or give --format")
    if fmt == "parquet" and not out:
        raise HarnessError("--format", fmt, "writes a binary file, not text for a terminal; give --out FILE.parquet")
    return fmt or ext or None


def main(args) -> int:
    if args.out:  # first: a directory is named as one, not as a file without an extension
        check_writable_file(args.out, "--out")
    fmt = output_format(args.format, args.out)
    if args.public and not args.push_to_hub:
        raise HarnessError("--public", True, "makes a pushed leaderboard's new repo public; give --push-to-hub ORG/NAME, "
                           "or leave out --public")
    if args.failures:
        if args.push_to_hub:
            raise HarnessError("--push-to-hub", args.push_to_hub, "pushes the leaderboard, not the failures table; "
                               "leave out --failures or --push-to-hub")
        return _failures(args.results, fmt, args.out)
    if args.push_to_hub:
        check_push(args.push_to_hub)
    args.format = fmt or "md"
    rows = build(args.results, args.sort, args.ascending)
    unlisted = unlisted_failures(args.results, rows)
    if unlisted:
        print(f"{unlisted} failed unit(s) of settings with no finished unit are not on the board: "
              f"`recon-harness leaderboard {args.results} --failures` says why", file=sys.stderr)
    if args.out:
        write(rows, args.format, args.out)
        print(f"wrote {len(rows)} rows to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(render(rows, args.format).decode())
    if args.push_to_hub:
        from harness.leaderboard.export import push_to_hub

        commit = push_to_hub(rows, args.push_to_hub, public=args.public)
        made = "public" if args.public else "private"
        print(f"pushed to https://huggingface.co/datasets/{args.push_to_hub} ({commit}; a repo it created is {made}, an "
              "existing one keeps its visibility)", file=sys.stderr)
    return 0
