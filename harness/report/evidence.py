"""The report's evidence: member | reconstruction | inversion images, and sentence pairs."""

from __future__ import annotations

from harness.report.html import esc, fmt, html_table, img
from harness.scoring.pixels import GOOD_SSIM
from harness.scoring.verdict import GOOD_COSINE


def image_grid(inv: list[dict], sel: dict[int, dict]) -> str:
    members = {r["target"]: r for r in inv if r["target_kind"] == "member"}
    chosen = sorted((r for r in inv if r["target_kind"] == "selected"), key=lambda r: r["rank"])
    best_of: dict[int, dict] = {}  # each member's best selection by SSIM (the published rule), then cosine
    for r in chosen:
        b = best_of.get(r["matched_member"])
        if b is None or (r["ssim"] or 0, r["target_member_cosine"] or 0) > (b["ssim"] or 0, b["target_member_cosine"] or 0):
            best_of[r["matched_member"]] = r
    rows = []
    for i, m in sorted(members.items()):
        b = best_of.get(i)
        rec = (
            img(b["image_png"], "selection " + str(b["rank"])) + f"<br>rank {b['rank']}, cos {fmt(b['target_member_cosine'])}, "
            f"SSIM {fmt(b['ssim'], '.2f')}" if b else "<span class=miss>no selection matches</span>"
        )
        rows.append([
            f"{img(m['reference_png'], f'member {i}')}<br>member {i}", rec,
            f"{img(m['image_png'], f'inversion of member {i}')}<br>cos {fmt(m['cosine'])}, SSIM {fmt(m['ssim'], '.2f')}, PSNR {fmt(m['psnr'], '.1f')}",
        ])
    grid = html_table(["member", "best reconstruction (selected, inverted)", "inversion of the true embedding"], rows, "grid")
    top = []
    for r in chosen:
        s = sel.get(r["rank"], {})
        mark = _mark(s.get("hit"), (r["ssim"] or 0) > GOOD_SSIM)
        top.append([
            str(r["rank"]), fmt(s.get("confidence"), ".2f"), str(s.get("support", "-")), img(r["image_png"], "selection " + str(r["rank"])),
            img(r["reference_png"], "nearest member"), f"{fmt(r['target_member_cosine'])} {mark}", fmt(r["cosine"]),
            fmt(r["ssim"], ".2f"), fmt(r["psnr"], ".1f"),
        ])
    ranked = html_table(["rank", "confidence", "runs", "inversion", "nearest member", "cos to member", "inversion cos", "SSIM",
                     "PSNR (100: identical)"], top, "ranked")
    return "<h3>Members, their best reconstruction, and the upper bound</h3>" + grid + "<h3>Top selections (ranked without the training set)</h3>" + ranked


def _mark(passes: bool | None, good: bool) -> str:
    """A selection's match: 'good' (a reconstruction by the verdict's rule), 'passes' (the membership threshold
    only, which is not a reconstruction), or 'no'."""
    if good:
        return '<span class="hit">good</span>'
    return '<span class="pass">passes</span>' if passes else '<span class="miss">no</span>'


TEXT_NOTE = ("Retrieval returns the nearest sentence of a public corpus (the non-members, and any --corpus): a member "
             "only where the corpus holds it, so a public sentence here is the closest public text, not the member. The "
             "word search builds a new sentence from public words; token F1 counts the member's words it holds. Rows of "
             "members' true embeddings are the upper bound: what inversion gives for a perfect reconstruction.")


def _cut(text: str | None, most: int = 600) -> str | None:
    """A sentence as the page shows it: whole up to `most` characters, else its start and its length (a 20,000-
    character member ran over the next column; the rows keep every character)."""
    return text if text is None or len(text) <= most else f"{text[:most]}… ({len(text):,} characters)"


def text_pairs(inv: list[dict], sel: dict[int, dict]) -> str:
    rows = []
    order = sorted(inv, key=lambda r: (r["target_kind"] != "selected", r["rank"] if r["rank"] is not None else r["target"], r["method"]))
    for r in order:
        s = sel.get(r["rank"], {}) if r["target_kind"] == "selected" else {}
        who = (f"selection {r['rank']} (conf {fmt(s.get('confidence'), '.2f')}), nearest member {r.get('matched_member')}"
               if r["target_kind"] == "selected" else f"member {r['target']} (true embedding)")
        mark = _mark(s.get("hit"), (r["target_member_cosine"] or 0) > GOOD_COSINE) if r["target_kind"] == "selected" else ""
        rows.append([
            esc(who), f"{fmt(r['target_member_cosine'])} {mark}", esc(r["method"]), f"<div class=s>{esc(_cut(r['reference_text']))}</div>",
            f"<div class=s>{esc(_cut(r['text']))}</div>", fmt(r["cosine"]), fmt(r["token_f1"], ".2f"), fmt(r.get("content_f1"), ".2f"), fmt(r["bleu"], ".1f"), "yes" if r["exact"] else "no",
        ])
    return f'<h3>Sentences: nearest member | inversion</h3><p class="note">{esc(TEXT_NOTE)}</p>' + html_table(
        ["target", "cos to member", "method", "member sentence", "inversion", "inversion cos", "token F1", "content F1", "BLEU", "exact"], rows, "pairs"
    )
