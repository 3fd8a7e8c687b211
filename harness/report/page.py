"""Build the report page from a results directory's tables; write it atomically (temp file + rename)."""

from __future__ import annotations

import base64
import html
import json
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from harness.errors import HarnessError
from harness.report import plots
from harness.scoring.embedding import control_note
from harness.scoring.pixels import GOOD_SSIM
from harness.scoring.verdict import GOOD_COSINE, verdict
from harness.store.store import ResultStore, atomic_write_bytes

CSS = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ccc}h3{font-size:15px}
table{border-collapse:collapse;margin:8px 0;font-size:13px}td,th{border:1px solid #ddd;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f3f3f3}img.px{image-rendering:pixelated;width:96px;height:96px}.plots img{margin-right:8px}
.hit{color:#080;font-weight:bold}.pass{color:#a60}.miss{color:#999}.note{color:#555;font-size:13px}div.s{max-width:360px}
.verdict{font-size:15px;background:#f7f7f7;padding:6px 10px;border-left:4px solid #888}dt{font-weight:bold;margin-top:6px}
"""


def _e(x) -> str:
    return html.escape("" if x is None else str(x))


def _f(x, spec=".3f") -> str:
    return "-" if x is None or (isinstance(x, float) and not np.isfinite(x)) else format(x, spec)


def _img(png: bytes | None, alt: str) -> str:
    if not png:
        return "<span class=miss>-</span>"
    return f'<img class="px" alt="{_e(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _plot(b64: str, alt: str) -> str:
    return f'<img class="plot" alt="{_e(alt)}" src="data:image/png;base64,{b64}">'


def _table(header: list[str], rows: list[list[str]], cls: str = "") -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _group(rows: list[dict]) -> dict[tuple, list[dict]]:
    out = defaultdict(list)
    for r in rows:
        out[(r["unit_id"], r["victim"])].append(r)
    return out


def _checkpoint(v: dict) -> str:
    """A classifier card's row: the architecture, what is attacked, and the logits check."""
    info = json.loads(v.get("trainer_info") or "{}")
    return _e(f"{info.get('architecture', '?')} @ {v['revision'][:12]}: {info.get('attacked', '')}; logits reproduced to "
              f"{info.get('logits_max_abs_diff', float('nan')):.1e} on {info.get('logits_checked_on', 0)} inputs")


def _stated(v: dict) -> dict:
    """What a given head's file states of its training (harness-saved heads: recipe, real or null victim, unit)."""
    return json.loads(v.get("trainer_info") or "{}").get("stated") or {} if v.get("trainer") == "given" else {}


def _metrics(v: dict, scores: list[dict]) -> str:
    # a null victim's diagnostics are of the rows it trained on (a disjoint draw, or shuffled labels), not the members
    rows_of = "members" if v.get("victim") == "real" else "its own training rows (not the members)"
    rows = [
        ["members / non-members", f"{v['n_members']} / {v['n_nonmembers']}"],
        ["head", "-".join(map(str, v["head_dims"] or [])) + f" ({v['head_params']} params"
         + (f", {_e(v['head_activation'])}, bias {_e(v['head_bias'])}" if v.get("head_activation") else "") + ")"],
        *([["given head: what its file states of its training (recorded, not checked)",
            _e(", ".join(f"{k} {val}" for k, val in stated.items()))]] if (stated := _stated(v)) else []),
        *([["checkpoint (its own head attacked)", _checkpoint(v)]] if v.get("model_kind") == "classifier" else []),
        ["victim recipe (transform + trainer)", _e(v.get("recipe") or "none+paper")
         + (f"; active units per member {_f(v['active_share'], '.2f')}" if v.get("active_share") is not None else "")
         + (f"; DP epsilon {_f(v['dp_epsilon'], '.2f')}" if v.get("dp_epsilon") is not None else "")],
        ["train loss / test acc / oracle residual", f"{_f(v['train_loss'], '.1e')} / {_f(v['test_acc'], '.2f')} / {_f(v['oracle_residual'])}"],
        *([[f"{rows_of} the weights carry (participation ratio of the oracle fit; the search finds those with the "
            "largest parts first)", f"{_f(v['effective_members'], '.1f')} of {v['n_members']}"]]
          if v.get("effective_members") is not None else []),
        *([[f"{rows_of} W1's row space holds (cut into the directions kkt searches, still at cosine > 0.8: at most "
            "this many can come back from there)", f"{v['in_row_space']} of {v['n_members']}"]]
          if v.get("in_row_space") is not None else []),
        ["attack", f"{_e(v['attack'])}: {v['n_runs']} runs, {v['n_candidates']} candidates, {_f(v['attack_s'], '.1f')} s"],
        [f"threshold at {v['fpr']:.0%} FPR" + (f" (over {v['n_control']} non-members)" if v.get("n_control") is not None else "")
         + (f": {_e(note)}" if (note := control_note(v["fpr"], v.get("n_control"))) else ""), _f(v["threshold"])],
        ["TPR at that FPR (members passed)", f"{_f(v['tpr_at_fpr'], '.2f')} ({_f(v['members_passed'], 'd')}/{v['n_members']})"],
        ["mean best cosine members / non-members", f"{_f(v['mean_member_best'])} / {_f(v['mean_nonmember_best'])}"],
        ["members with a candidate at cosine > 0.8 / > 0.9", f"{_f(v['good_at_0_8'], 'd')} / {_f(v['good_at_0_9'], 'd')} of {v['n_members']}"],
        *([["of those at > 0.8: closer than any public input / members the public inputs alone match at > 0.8",
            f"{_f(v['good_at_0_8_beyond_public'], 'd')} / {v['public_good_at_0_8']}"]] if v.get("public_good_at_0_8") is not None else []),
    ]
    if v.get("good_ssim") is not None:
        rows += [
            ["members with a candidate at SSIM > 0.4 (good, Haim et al.)", f"{v['good_ssim']} of {v['n_members']}"],
            *([["of those: closer than any public image / members the public images alone match at SSIM > 0.4",
                f"{v['good_ssim_beyond_public']} / {v['public_good_ssim']}"]] if v.get("public_good_ssim") is not None else []),
            [f"SSIM threshold at {v['fpr']:.0%} FPR / TPR / mean best member SSIM",
             f"{_f(v['ssim_threshold'])} / {_f(v['ssim_tpr_at_fpr'], '.2f')} / {_f(v['mean_member_best_ssim'])}"],
        ]
    by = {(s["strategy"], s["k"]): s for s in scores}
    for k in sorted({s["k"] for s in scores}):
        c, b = by.get(("cluster", k)), by.get(("lowest-loss", k))
        rows.append([
            f"top-{k} precision / recall (of the k, the share passing the membership threshold / members found): "
            "clustering vs lowest KKT loss",
            f"{_f(c and c['precision'], '.2f')} / {_f(c and c['recall'], '.2f')} vs "
            f"{_f(b and b['precision'], '.2f')} / {_f(b and b['recall'], '.2f')}",
        ])
    return _table(["measure", "value"], rows, "metrics")


def _verdict(v: dict) -> str:
    return f'<p class="verdict"><b>What was recovered:</b> {_e(_verdict_text(v))}</p>'


def _verdict_text(v: dict) -> str:
    pixels = v.get("good_ssim") is not None
    return verdict(v["n_members"], v["members_passed"] or 0, v["fpr"], v["good_at_0_8"] or 0, v.get("good_ssim"),
                   linear=len(v.get("head_dims") or []) == 2,
                   public_good=v.get("public_good_ssim" if pixels else "public_good_at_0_8"),  # None in rows written before them
                   beyond_public=v.get("good_ssim_beyond_public" if pixels else "good_at_0_8_beyond_public"),
                   measured=v.get("threshold", 0.0) is not None,  # null: no finite candidate to set it
                   n_control=v.get("n_control"),
                   passed_ssim=round(v["ssim_tpr_at_fpr"] * v["n_members"]) if v.get("ssim_tpr_at_fpr") is not None else None)


def _image_grid(inv: list[dict], sel: dict[int, dict]) -> str:
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
            _img(b["image_png"], "selection " + str(b["rank"])) + f"<br>rank {b['rank']}, cos {_f(b['target_member_cosine'])}, "
            f"SSIM {_f(b['ssim'], '.2f')}" if b else "<span class=miss>no selection matches</span>"
        )
        rows.append([
            f"{_img(m['reference_png'], f'member {i}')}<br>member {i}", rec,
            f"{_img(m['image_png'], f'inversion of member {i}')}<br>cos {_f(m['cosine'])}, SSIM {_f(m['ssim'], '.2f')}, PSNR {_f(m['psnr'], '.1f')}",
        ])
    grid = _table(["member", "best reconstruction (selected, inverted)", "inversion of the true embedding"], rows, "grid")
    top = []
    for r in chosen:
        s = sel.get(r["rank"], {})
        mark = _mark(s.get("hit"), (r["ssim"] or 0) > GOOD_SSIM)
        top.append([
            str(r["rank"]), _f(s.get("confidence"), ".2f"), str(s.get("support", "-")), _img(r["image_png"], "selection " + str(r["rank"])),
            _img(r["reference_png"], "nearest member"), f"{_f(r['target_member_cosine'])} {mark}", _f(r["cosine"]),
            _f(r["ssim"], ".2f"), _f(r["psnr"], ".1f"),
        ])
    ranked = _table(["rank", "confidence", "runs", "inversion", "nearest member", "cos to member", "inversion cos", "SSIM",
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


def _text_pairs(inv: list[dict], sel: dict[int, dict]) -> str:
    rows = []
    order = sorted(inv, key=lambda r: (r["target_kind"] != "selected", r["rank"] if r["rank"] is not None else r["target"], r["method"]))
    for r in order:
        s = sel.get(r["rank"], {}) if r["target_kind"] == "selected" else {}
        who = (f"selection {r['rank']} (conf {_f(s.get('confidence'), '.2f')}), nearest member {r.get('matched_member')}"
               if r["target_kind"] == "selected" else f"member {r['target']} (true embedding)")
        mark = _mark(s.get("hit"), (r["target_member_cosine"] or 0) > GOOD_COSINE) if r["target_kind"] == "selected" else ""
        rows.append([
            _e(who), f"{_f(r['target_member_cosine'])} {mark}", _e(r["method"]), f"<div class=s>{_e(r['reference_text'])}</div>",
            _e(r["text"]), _f(r["cosine"]), _f(r["token_f1"], ".2f"), _f(r.get("content_f1"), ".2f"), _f(r["bleu"], ".1f"), "yes" if r["exact"] else "no",
        ])
    return f'<h3>Sentences: nearest member | inversion</h3><p class="note">{_e(TEXT_NOTE)}</p>' + _table(
        ["target", "cos to member", "method", "member sentence", "inversion", "inversion cos", "token F1", "content F1", "BLEU", "exact"], rows, "pairs"
    )


def _trends(victims: list[dict]) -> str:
    real = [v for v in victims if v["victim"] == "real"]
    out = []
    for key, label in (("n_members", "members (n)"), ("width", "head width")):
        pts = defaultdict(list)
        for v in real:
            x = v["n_members"] if key == "n_members" else (v["head_dims"] or [0, 0])[1]
            if v["members_passed"] is not None:  # null: nothing was measured (every run diverged)
                pts[x].append(v["members_passed"] / v["n_members"])
        if len(pts) > 1:
            xs = sorted(pts)
            series = {"members passing the threshold": [float(np.mean(pts[x])) for x in xs]}
            out.append(_plot(plots.trend(xs, series, label, f"share of members passing vs {label} (mean over the units)",
                                         "share of members passing"), f"trend {label}"))
    return f'<h2>Trends</h2><div class="plots">{"".join(out)}</div>' if out else ""


def _label(v: dict) -> str:
    """What tells one unit's section from another's: task, model, recipe and seed."""
    return f"{v['task']} × {v['model']}, {v.get('recipe') or 'none+paper'}, seed {v['seed']}"


def _order(v: dict) -> tuple:
    return (v["task"], v["model"], v.get("recipe") or "", v["seed"], v["unit_id"], v["victim"] != "real")


def _anchor(v: dict) -> str:
    return f"{v['unit_id']}-{v['victim']}"


def _glance(victims: list[dict]) -> str:
    """One row per unit, its real victim beside its null control: what leaked, against which control."""
    real = [v for v in victims if v["victim"] == "real"]
    null = {v["unit_id"]: v for v in victims if v["victim"] == "null"}
    pixels = any(v.get("good_ssim") is not None for v in real)

    def counts(v: dict | None) -> list[str]:
        if v is None:
            return ["-"] * (4 + pixels)
        n = v["n_members"]
        return [_f(v["tpr_at_fpr"], ".2f"), f"{_f(v['members_passed'], 'd')}/{n}", f"{_f(v['good_at_0_8'], 'd')}/{n}",
                *([f"{_f(v.get('good_ssim'), 'd')}/{n}"] if pixels else [])]

    rows = [[f'<a href="#{_e(_anchor(v))}">{_e(_label(v))}</a>', *counts(v), *counts(null.get(v["unit_id"])),
             _e(_verdict_text(v))] for v in sorted(real, key=_order)]
    cols = ["TPR", "pass", "> 0.8", *(["SSIM > 0.4"] if pixels else [])]
    head = ["unit (task × model, recipe, seed)", *[f"real: {c}" for c in cols], *[f"null: {c}" for c in cols], "what was recovered"]
    return ("<h2>At a glance</h2><p class=\"note\">Each unit's victim beside its null control (the same recipe trained "
            "on a disjoint draw: what it gives is the attack's false-positive rate). TPR and pass: members above the "
            "membership threshold; &gt; 0.8 / SSIM &gt; 0.4: members with a candidate that close, reconstructions.</p>"
            + _table(head, rows, "glance"))


GLOSSARY = [
    ("null victim", "the same recipe trained on shuffled labels of a disjoint draw: it never saw the members, so what "
     "the attack 'recovers' from it is a false positive"),
    ("threshold, TPR, FPR", "the non-members' best similarities set the threshold that 1% of them pass (FPR); TPR is "
     "the share of members above it: membership, not reconstruction"),
    ("reconstruction", "a candidate at cosine > 0.8 to a member (SSIM > 0.4 for images, Haim et al.)"),
    ("public input", "a non-member the attacker holds; a member a public input alone matches is not counted as leaked "
     "by the head"),
    ("KKT attack (kkt)", "candidates and weights fitted so that the head's parameters are a weighted sum of their "
     "gradients, the stationarity condition of training (Haim et al. 2022)"),
    ("oracle residual", "how far the members themselves are from meeting that condition (0: exactly): near 1, the "
     "head is not at the point the attack relies on"),
    ("effective members", "how many members the head's weights carry (the participation ratio of the oracle fit)"),
    ("active units", "the share of first-layer units a member switches on: near 1, the head is near linear"),
    ("selection, confidence, runs", "clusters of candidates found again by independent restarts, ranked without the "
     "training set; 'runs' counts the restarts a cluster holds"),
    ("good / passes / no", "a selection's nearest member: close enough to be a reconstruction / above the membership "
     "threshold only / neither"),
]


def render(root: Path) -> str:
    store = ResultStore(root, create=False)
    victims = store.read("victims").to_pylist()
    if not victims:  # a victim whose attack left no candidate is reported as such (its verdict says so)
        raise HarnessError("results", str(root), "holds no victims to report on; run `recon-harness run TASK --out DIR` first")
    matches = _group(store.read("matches").to_pylist())
    scores = _group(store.read("selection_scores").to_pylist())
    sels = _group(store.read("selections").to_pylist())
    invs = _group(store.read("inversions").to_pylist())
    units = len({v["unit_id"] for v in victims})
    parts = [f"<h1>Reconstruction report: {_e(root.name)}</h1>",
             f'<p class="note">{units} unit{"s" if units != 1 else ""} ({len(victims)} victims, null controls included) '
             f'from {_e(root)}; generated {time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}. '
             "Selections are ranked without the training set; matching to members is the harness's scoring only.</p>",
             _glance(victims)]
    for v in sorted(victims, key=_order):
        key = (v["unit_id"], v["victim"])
        parts.append(f'<h2 id="{_e(_anchor(v))}">{_e(_label(v))}: {_e(v["victim"])} victim</h2>'
                     f'<p class="note">unit {_e(v["unit_id"])}, {_e(v["model_id"])}@{_e(v["revision"][:12])}</p>')
        parts.append(_verdict(v))
        parts.append(_metrics(v, scores.get(key, [])))
        m = matches.get(key, [])
        mem = np.array([r["score"] for r in m if r["kind"] == "member" and r["score"] is not None])
        non = np.array([r["score"] for r in m if r["kind"] == "nonmember" and r["score"] is not None])
        if len(mem):
            title = f"{_label(v)} / {v['victim']}"
            ssim = [np.array([r["ssim"] for r in m if r["kind"] == kind and r.get("ssim") is not None])
                    for kind in ("member", "nonmember")]  # pixel victims: the published score, per member
            parts.append('<div class="plots">'
                         + _plot(plots.similarity_histogram(mem, non, v["threshold"], title, good=GOOD_COSINE), "similarity histogram")
                         + _plot(plots.roc_curve(mem, non, title), "TPR/FPR curve")
                         + (_plot(plots.similarity_histogram(*ssim, v.get("ssim_threshold"), title, "best SSIM to any candidate",
                                                             good=GOOD_SSIM), "SSIM histogram") if len(ssim[0]) else "")
                         + "</div>")
        inv = invs.get(key, [])
        sel = {r["rank"]: r for r in sels.get(key, [])}
        if inv and any(r["image_png"] for r in inv):
            parts.append(_image_grid(inv, sel))
        elif inv:
            parts.append(_text_pairs(inv, sel))
        elif v["victim"] == "real":
            parts.append('<p class="note">No inversions stored for this unit (selection and inversion were not run: '
                         "`run --no-evidence`, a sweep, or no candidate).</p>")
    parts.append(_trends(victims))
    parts.append("<h2>How to read this page</h2><dl>" + "".join(f"<dt>{_e(t)}</dt><dd>{_e(d)}</dd>" for t, d in GLOSSARY)
                 + "</dl>")
    return f"<!doctype html><html><head><meta charset='utf-8'><title>recon-harness report</title><style>{CSS}</style></head><body>{''.join(parts)}</body></html>"


def build_report(results_dir: str | Path, out: str | Path | None = None) -> Path:
    """Render the report of `results_dir` and write it (temp file + rename) to `out` (default RESULTS/report.html)."""
    root = Path(results_dir)
    if not root.is_dir():
        raise HarnessError("results", str(root), "no such directory; give a directory written by `recon-harness run`")
    page = render(root)
    target = Path(out) if out else root / "report.html"
    atomic_write_bytes(target, page.encode())
    return target
