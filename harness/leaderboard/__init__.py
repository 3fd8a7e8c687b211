"""The cross-model leaderboard: one row per (model, revision, task, setting), exported or pushed to the Hub."""

from harness.leaderboard.build import build
from harness.leaderboard.columns import COLUMNS
from harness.leaderboard.export import FORMATS, render, write

__all__ = ["COLUMNS", "FORMATS", "build", "render", "write"]
