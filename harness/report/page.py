"""Build the report page from a results directory's tables; write it atomically (temp file + rename)."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from harness.errors import HarnessError
from harness.report import plots
from harness.report.evidence import image_grid, text_pairs
from harness.report.glance import GLOSSARY, anchor, glance, unit_labels, unit_order, verdict_html
from harness.report.html import CSS, esc, fmt, html_table, plot_img
from harness.scoring.embedding import control_note
from harness.scoring.pixels import GOOD_SSIM
from harness.scoring.verdict import GOOD_COSINE, percent
from harness.store.store import ResultStore, atomic_write_bytes


def _group(rows: list[dict]) -> dict[tuple, list[dict]]:
    out = defaultdict(list)
    for r in rows:
        out[(r["unit_id"], r["victim"])].append(r)
    return out


def _checkpoint(v: dict) -> str:
    """A classifier card's row: the architecture, what is attacked, and the logits check."""
    info = json.loads(v.get("trainer_info") or "{}")
    return esc(f"{info.get('architecture', '?')} @ {v['revision'][:12]}: {info.get('attacked', '')}; logits reproduced to "
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
         + (f", {esc(v['head_activation'])}, bias {esc(v['head_bias'])}" if v.get("head_activation") else "") + ")"],
        *([["given head: what its file states of its training (recorded, not checked)",
            esc(", ".join(f"{k} {val}" for k, val in stated.items()))]] if (stated := _stated(v)) else []),
        *([["checkpoint (its own head attacked)", _checkpoint(v)]] if v.get("model_kind") == "classifier" else []),
        ["victim recipe (transform + trainer)", esc(v.get("recipe") or "none+paper")
         + (f"; active units per member {fmt(v['active_share'], '.2f')}" if v.get("active_share") is not None else "")
         + (f"; DP epsilon {fmt(v['dp_epsilon'], '.2f')}" if v.get("dp_epsilon") is not None else "")],
        ["train loss / test acc / oracle residual", f"{fmt(v['train_loss'], '.1e')} / {fmt(v['test_acc'], '.2f')} / {fmt(v['oracle_residual'])}"],
        *([["the training's distance from stationarity, (gradient norm / (weight decay x |θ|))²: the oracle residual is at "
            "most this (where the two are close, what the members leave unexplained is unfinished training)",
            fmt(v["stationarity_bound"], ".3g")]] if v.get("stationarity_bound") is not None else []),
        *([[f"{rows_of} the weights carry (participation ratio of the oracle fit; the search finds those with the "
            "largest parts first)", f"{fmt(v['effective_members'], '.1f')} of {v['n_members']}"]]
          if v.get("effective_members") is not None else []),
        *([[f"{rows_of} W1's row space holds (cut into the directions kkt searches, still at cosine > 0.8: at most "
            "this many can come back from there)", f"{v['in_row_space']} of {v['n_members']}"]]
          if v.get("in_row_space") is not None else []),
        *([[f"{rows_of} with an activation pattern of their own (members that share one enter the weights only through "
            "their group's weighted sum: they come back only where they are alike)", f"{v['own_pattern']} of {v['n_members']}"]]
          if v.get("own_pattern") is not None else []),
        ["attack", f"{esc(v['attack'])}: {v['n_runs']} runs, {v['n_candidates']} candidates, {fmt(v['attack_s'], '.1f')} s"],
        [f"threshold at {percent(v['fpr'])} FPR" + (f" (over {v['n_control']} non-members)" if v.get("n_control") is not None else "")
         + (f": {esc(note)}" if (note := control_note(v["fpr"], v.get("n_control"))) else ""), fmt(v["threshold"])],
        ["TPR at that FPR (members passed)", f"{fmt(v['tpr_at_fpr'], '.2f')} ({fmt(v['members_passed'], 'd')}/{v['n_members']})"],
        ["mean best cosine members / non-members", f"{fmt(v['mean_member_best'])} / {fmt(v['mean_nonmember_best'])}"],
        ["members with a candidate at cosine > 0.8 / > 0.9", f"{fmt(v['good_at_0_8'], 'd')} / {fmt(v['good_at_0_9'], 'd')} of {v['n_members']}"],
        *([["of those at > 0.8: closer than any public input / members the public inputs alone match at > 0.8",
            f"{fmt(v['good_at_0_8_beyond_public'], 'd')} / {v['public_good_at_0_8']}"]] if v.get("public_good_at_0_8") is not None else []),
        *([["members at cosine > 0.8 from the first half of the attack's brackets (what the second half added: is the "
            "count the budget's?)", f"{v['good_at_0_8_first_half']} of the {fmt(v['good_at_0_8'], 'd')}"]]
          if v.get("good_at_0_8_first_half") is not None else []),
    ]
    if v.get("good_ssim") is not None:
        rows += [
            ["members with a candidate at SSIM > 0.4 (good, Haim et al.)", f"{v['good_ssim']} of {v['n_members']}"],
            *([["of those: closer than any public image / members the public images alone match at SSIM > 0.4",
                f"{v['good_ssim_beyond_public']} / {v['public_good_ssim']}"]] if v.get("public_good_ssim") is not None else []),
            *([["members at SSIM > 0.4 from the first half of the attack's brackets", f"{v['good_ssim_first_half']} of the {v['good_ssim']}"]]
              if v.get("good_ssim_first_half") is not None else []),
            [f"SSIM threshold at {percent(v['fpr'])} FPR / TPR / mean best member SSIM",
             f"{fmt(v['ssim_threshold'])} / {fmt(v['ssim_tpr_at_fpr'], '.2f')} / {fmt(v['mean_member_best_ssim'])}"],
        ]
    by = {(s["strategy"], s["k"]): s for s in scores}
    for k in sorted({s["k"] for s in scores}):
        c, b = by.get(("cluster", k)), by.get(("lowest-loss", k))
        rows.append([
            f"top-{k} precision / recall (of the k, the share passing the membership threshold / members found): "
            "clustering vs lowest KKT loss",
            f"{fmt(c and c['precision'], '.2f')} / {fmt(c and c['recall'], '.2f')} vs "
            f"{fmt(b and b['precision'], '.2f')} / {fmt(b and b['recall'], '.2f')}"
            + (f" (precision at most {v['n_members'] / k:.2f}: {v['n_members']} members)" if v["n_members"] < k else ""),
        ])
    return html_table(["measure", "value"], rows, "metrics")


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
            out.append(plot_img(plots.trend(xs, series, label, f"share of members passing vs {label} (mean over the units)",
                                         "share of members passing"), f"trend {label}"))
    return f'<h2>Trends</h2><div class="plots">{"".join(out)}</div>' if out else ""


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
    parts = [f"<h1>Reconstruction report: {esc(root.name)}</h1>",
             f'<p class="note">{units} unit{"s" if units != 1 else ""} ({len(victims)} victims, null controls included) '
             f'from {esc(root)}; generated {time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}. '
             "Selections are ranked without the training set; matching to members is the harness's scoring only.</p>",
             glance(victims)]
    labels = unit_labels(victims)
    for v in sorted(victims, key=unit_order):
        key = (v["unit_id"], v["victim"])
        parts.append(f'<h2 id="{esc(anchor(v))}">{esc(labels[v["unit_id"]])}: {esc(v["victim"])} victim</h2>'
                     f'<p class="note">unit {esc(v["unit_id"])}, {esc(v["model_id"])}@{esc(v["revision"][:12])}</p>')
        parts.append(verdict_html(v))
        parts.append(_metrics(v, scores.get(key, [])))
        m = matches.get(key, [])
        mem = np.array([r["score"] for r in m if r["kind"] == "member" and r["score"] is not None])
        non = np.array([r["score"] for r in m if r["kind"] == "nonmember" and r["score"] is not None])
        if len(mem):
            title = f"{labels[v['unit_id']]} / {v['victim']}"
            ssim = [np.array([r["ssim"] for r in m if r["kind"] == kind and r.get("ssim") is not None])
                    for kind in ("member", "nonmember")]  # pixel victims: the published score, per member
            fpr = v["fpr"]
            parts.append('<div class="plots">'
                         + plot_img(plots.similarity_histogram(mem, non, v["threshold"], title, good=GOOD_COSINE, fpr=fpr),
                                    "similarity histogram")
                         + plot_img(plots.roc_curve(mem, non, title, fpr), "TPR/FPR curve")
                         + (plot_img(plots.similarity_histogram(*ssim, v.get("ssim_threshold"), title, "best SSIM to any candidate",
                                                             good=GOOD_SSIM, fpr=fpr), "SSIM histogram") if len(ssim[0]) else "")
                         + "</div>")
        inv = invs.get(key, [])
        sel = {r["rank"]: r for r in sels.get(key, [])}
        if inv and any(r["image_png"] for r in inv):
            parts.append(image_grid(inv, sel))
        elif inv:
            parts.append(text_pairs(inv, sel))
        elif v["victim"] == "real":
            parts.append('<p class="note">No inversions stored for this unit (selection and inversion were not run: '
                         "`run --no-evidence`, a sweep, or no candidate).</p>")
    parts.append(_trends(victims))
    parts.append("<h2>How to read this page</h2><dl>" + "".join(f"<dt>{esc(t)}</dt><dd>{esc(d)}</dd>" for t, d in GLOSSARY)
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
