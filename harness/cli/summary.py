"""The one-screen summary printed at the end of `recon-harness run`."""

from __future__ import annotations

from rich.console import Console

from harness.cli.console import console as make_console
from rich.table import Table

from harness.pipeline.run_task import UnitOutput


def _fmt(x, spec=".3f") -> str:
    return "-" if x is None else format(x, spec)


def print_summary(o: UnitOutput, out, console: Console | None = None) -> None:
    console = console or make_console()
    u = o.unit
    table = Table(title=f"{u.task.name} x {u.card.name} @ {u.revision[:12]}  (unit {u.unit_id})")
    for col in ("victim", "n", "train loss", "test acc", "oracle res.", "runs", "cands", f"thr@{u.task.fpr:.0%}FPR", "TPR", "members >thr", ">0.8", "mean best m/nm"):
        table.add_column(col, justify="right")
    for kind, vo in o.outcomes.items():
        s, rep = vo.scores, vo.trained.report
        table.add_row(
            kind, str(o.split.n), _fmt(rep.final_loss if rep else None, ".1e"), _fmt(vo.trained.test_acc, ".2f"),
            _fmt(vo.trained.oracle_residual), str(len(vo.result.runs)), str(len(vo.result.candidates)),
            _fmt(s.threshold), _fmt(s.tpr, ".2f"), f"{int(s.passed().sum())}/{o.split.n}",
            str(int((s.member_best > 0.8).sum())),
            f"{s.member_best.mean():.2f}/{s.nonmember_best.mean() if len(s.nonmember_best) else float('nan'):.2f}",
        )
    console.print(table)
    real = o.outcomes.get("real")
    if real is not None and u.card.modality == "text":
        order = real.scores.member_best.argsort()[::-1][:5]
        console.print("[bold]closest reconstructions (member sentence, best cosine):[/]")
        for i in order:
            mark = "[green]pass[/]" if real.scores.member_best[i] > real.scores.threshold else "[dim]miss[/]"
            console.print(f"  {real.scores.member_best[i]:.3f} {mark}  {str(o.split.member_inputs[i])[:90]}")
    if out is not None:
        counts = ", ".join(f"{k} {v}" for k, v in o.row_counts.items())
        console.print(f"wrote {out}: {counts} rows; total {o.wall_s:.1f}s")
