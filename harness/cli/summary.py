"""The one-screen summary printed at the end of `recon-harness run`."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from harness.cli.console import console as make_console
from rich.table import Table

from harness.pipeline.unit import UnitOutput
from harness.scoring.embedding import control_note
from harness.scoring.verdict import GOOD_COSINE, doubts, percent, verdict


def _fmt(x, spec=".3f") -> str:
    return "-" if x is None else format(x, spec)


def print_summary(o: UnitOutput, out, console: Console | None = None) -> None:
    console = console or make_console()
    u = o.unit
    table = Table(title=escape(f"{u.task.name} x {u.card.name} @ {u.revision[:12]}  (unit {u.unit_id})"))
    pixels = any(vo.pixels is not None for vo in o.outcomes.values())
    cols = ["victim", "n", "train loss", "test acc", "oracle res.", "carried", "runs", "cands", f"thr@{percent(u.task.fpr)}FPR", "TPR", "members >thr", ">0.8", "mean best m/nm"]
    for col in cols + (["SSIM>0.4", "SSIM TPR"] if pixels else []) + ["beyond/pub"]:
        table.add_column(col, justify="right")
    said = []
    for kind, vo in o.outcomes.items():
        s, rep = vo.scores, vo.trained.report
        passed, good = int(s.passed().sum()), int((s.member_best > GOOD_COSINE).sum())
        px = vo.pixels
        # the deciding rule's public floor: SSIM for pixel victims, cosine otherwise
        pub, beyond = (px.public_good, px.beyond_public) if px else (s.public_good(GOOD_COSINE), s.beyond_public(GOOD_COSINE))
        table.add_row(
            kind, str(o.split.n), _fmt(rep.final_loss if rep else None, ".1e"), _fmt(vo.trained.test_acc, ".2f"),
            _fmt(vo.trained.oracle_residual), _fmt(vo.trained.effective_members, ".0f"), str(len(vo.result.runs)), str(len(vo.result.candidates)),
            _fmt(s.threshold), _fmt(s.tpr, ".2f"), f"{passed}/{o.split.n}", str(good),
            f"{s.member_best.mean():.2f}/{s.nonmember_best.mean() if len(s.nonmember_best) else float('nan'):.2f}",
            *([f"{px.good}/{o.split.n}" if px else "-", _fmt(px.tpr if px else None, ".2f")] if pixels else []),
            "-" if pub is None else f"{beyond}/{pub}",
        )
        said.append(f"[bold]{kind}:[/] " + escape(verdict(
            o.split.n, passed, s.fpr, good, px.good if px else None, vo.trained.linear, pub, beyond, measured=s.measured,
            n_control=len(s.nonmember_best), passed_ssim=int(px.passed().sum()) if px else None)))
        said += [f"[yellow]{escape(d)}[/]" for d in doubts(vo.trained.recipe.trainer, vo.trained.train_acc, vo.trained.oracle_residual,
                                                          len(o.split.class_names), s.threshold if s.measured else None, s.fpr,
                                                          px is not None, px.good if px else good,
                                                          px.good_first_half if px else s.good_first_half,
                                                          bound=vo.trained.stationarity_bound if kind == "real" else None,
                                                          n=o.split.n, own=vo.trained.own_pattern if kind == "real" else None,
                                                          active=vo.trained.active_share if kind == "real" else None)]
    console.print(table)
    for note in dict.fromkeys(control_note(vo.scores.fpr, len(vo.scores.nonmember_best)) for vo in o.outcomes.values()):
        if note:
            console.print(f"[yellow]note:[/] {note}", markup=True, highlight=False)
    if pixels:
        console.print("[dim]thr, TPR and members >thr: by cosine; SSIM>0.4 and SSIM TPR (at the same FPR): by SSIM, the "
                      "published score the verdict reads[/]")
    console.print("[dim]beyond/pub: members matched (SSIM > 0.4 for pixels, cosine > 0.8 otherwise) by a candidate closer than any "
                  "public input, and members the public inputs alone match by that rule[/]")
    for line in said:
        console.print(line)
    for kind, ev in o.evidence.items():
        if ev.cluster is not None:
            prec = "  ".join(
                f"top-{k} {ev.cluster.precision[k]:.2f} vs {ev.baseline.precision[k]:.2f}"
                + (f" (of at most {o.split.n / k:.2f}: {o.split.n} members)" if o.split.n < k else "")  # hits: members
                for k in ev.cluster.ks
            )
            console.print(f"selection ({kind}): {len(ev.selection)} clusters; precision clustering vs lowest-loss: {prec}")
    _print_inversions(o, console)
    real = o.outcomes.get("real")
    if real is not None and u.card.modality == "text" and not o.evidence:
        order = real.scores.member_best.argsort()[::-1][:5]
        console.print("[bold]closest reconstructions (member sentence, best cosine):[/]")
        for i in order:
            mark = "[green]pass[/]" if real.scores.member_best[i] > real.scores.threshold else "[dim]miss[/]"
            console.print(f"  {real.scores.member_best[i]:.3f} {mark}  {escape(_cut(str(o.split.member_inputs[i]), 90))}")
    if out is not None:
        print_written(o, out, console)


def print_written(o: UnitOutput, out, console: Console) -> None:
    u = o.unit
    counts = ", ".join(f"{k} {v}" for k, v in o.row_counts.items())
    recipe = f"{u.task.victim.transform}+{u.task.victim.trainer}"
    console.print(f"wrote {escape(str(out))} (unit {u.unit_id}, {recipe}): rows {counts}; total {o.wall_s:.1f}s")


def _cut(text: str, width: int) -> str:
    """`text` in at most `width` characters, cut at a word with an ellipsis when longer."""
    if len(text) <= width:
        return text
    return text[: width - 1].rsplit(" ", 1)[0] + "…"


def _print_inversions(o: UnitOutput, console: Console) -> None:
    ev = o.evidence.get("real")
    if ev is None or not ev.inversions:
        return
    rows = [r for r in ev.inversions if r["target_kind"] == "selected"]
    if o.unit.card.modality == "text":
        console.print("[bold]top selections, inverted (member sentence -> inversion; cosines of the selection to its "
                      "nearest member and of the inversion's embedding to the selection):[/]")
        for r in sorted(rows, key=lambda r: (r["rank"], r["method"]))[:8]:
            console.print(
                f"  #{r['rank']} {r['method']:<11} selection~member {r['target_member_cosine']:.2f}  "
                f"inversion~selection {r['cosine']:.2f}  F1 {r['token_f1']:.2f}  "
                + escape(f"{_cut(r['reference_text'], 60)!r} -> {_cut(r['text'], 60)!r}")
            )
    else:
        for origin in ("selected", "member"):
            got = [r for r in ev.inversions if r["target_kind"] == origin]
            if got:
                console.print(
                    f"image inversion ({origin}, {got[0]['method']}): {len(got)} targets, mean cosine "
                    f"{sum(r['cosine'] for r in got) / len(got):.3f}, mean SSIM {sum(r['ssim'] for r in got) / len(got):.3f}, "
                    f"{got[0]['wall_s']:.2f}s per target"
                )
