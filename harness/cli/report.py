"""Write one self-contained HTML report (images, sentences, tables, plots) of a results directory."""

from __future__ import annotations

from pathlib import Path

from harness.cli.args import file_path
from harness.errors import HarnessError
from harness.report import build_report
from harness.store.store import ResultStore, check_writable_file


def add_arguments(p) -> None:
    p.add_argument("results", help="results directory written by `recon-harness run`")
    p.add_argument("--out", type=file_path, help="HTML file to write (default: RESULTS/report.html)")


def main(args) -> int:
    root = Path(args.results)
    if not root.is_dir():
        what = "is a file" if root.exists() else "no such directory"
        raise HarnessError("results", str(root), f"{what}; give a directory written by `recon-harness run`")
    ResultStore(root, create=False)  # a results directory of this schema version
    # without --out the page goes beside the results: where that folder is read-only, --out names the way out
    check_writable_file(args.out or root / "report.html", "--out" if args.out else "--out (default: RESULTS/report.html)", "report.html")
    path = build_report(args.results, args.out)
    print(f"report: {path}")
    return 0
