"""One self-contained HTML page per results directory: `build_report(results_dir, out)`."""

from harness.report.page import build_report

__all__ = ["build_report"]
