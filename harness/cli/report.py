"""Write one self-contained HTML report (images, sentences, tables, plots) of a results directory."""

from __future__ import annotations

from harness.report import build_report


def add_arguments(p) -> None:
    p.add_argument("results", help="results directory written by `recon-harness run`")
    p.add_argument("--out", help="HTML file to write (default: RESULTS/report.html)")


def main(args) -> int:
    path = build_report(args.results, args.out)
    print(f"report: {path}")
    return 0
