"""The cross-model leaderboard: one row per (model, revision, task, setting), exported or pushed to the Hub."""

from harness.leaderboard.build import COLUMNS, build
from harness.leaderboard.export import FORMATS, render, write

__all__ = ["COLUMNS", "FORMATS", "build", "render", "write"]
