"""The report's summary: each victim's verdict, the units at a glance (real victim beside its null control), how
sections are named and ordered, and what the page's terms mean."""

from __future__ import annotations

import json

from harness.specs.fields import differing_fields, field_value, flat_fields
from harness.report.html import esc, fmt, html_table
from harness.scoring.verdict import by_rule, doubts, scores_by_rule, ssim_passed, verdict


def verdict_html(v: dict) -> str:
    said = doubts(v.get("trainer"), v.get("train_acc"), v.get("oracle_residual"), v.get("num_classes") or 2,
                  v.get("threshold"), v["fpr"], v.get("good_ssim") is not None, by_rule(v, "good_ssim", "good_at_0_8"),
                  by_rule(v, "good_ssim_first_half", "good_at_0_8_first_half"),
                  bound=v.get("stationarity_bound") if v.get("victim") == "real" else None, n=v["n_members"],
                  own=v.get("own_pattern") if v.get("victim") == "real" else None,
                  active=v.get("active_share") if v.get("victim") == "real" else None)
    return (f'<p class="verdict"><b>What was recovered:</b> {esc(verdict_text(v))}</p>'
            + "".join(f'<p class="verdict"><b>But:</b> {esc(d)}</p>' for d in said))


def verdict_text(v: dict) -> str:
    return verdict(v["n_members"], v["members_passed"] or 0, v["fpr"], v["good_at_0_8"] or 0, v.get("good_ssim"),
                   linear=len(v.get("head_dims") or []) == 2,
                   public_good=by_rule(v, "public_good_ssim", "public_good_at_0_8"),
                   beyond_public=by_rule(v, "good_ssim_beyond_public", "good_at_0_8_beyond_public"),
                   measured=v.get("threshold", 0.0) is not None,  # null: no finite candidate to set it
                   n_control=v.get("n_control"),
                   passed_ssim=ssim_passed(v))


def unit_label(v: dict) -> str:
    """What tells one unit's section from another's: task, model, recipe and seed (unit_labels adds what else
    differs where these are the same)."""
    return f"{v['task']} × {v['model']}, {v.get('recipe') or 'none+paper'}, seed {v['seed']}"


def unit_labels(victims: list[dict]) -> dict[str, str]:
    """unit id -> its label; units whose labels would be the same (a grid over head.lr, two attack seeds) also name
    every task field they differ in (FIELD=VALUE), and the unit's id where even those are the same."""
    base = {v["unit_id"]: unit_label(v) for v in victims}
    tasks = {v["unit_id"]: flat_fields(json.loads(v.get("settings") or "{}").get("task", {})) for v in victims}
    out = dict(base)
    for label in set(base.values()):
        uids = sorted(u for u, b in base.items() if b == label)
        if len(uids) < 2:
            continue
        differ = [f for f in differing_fields([tasks[u] for u in uids]) if f != "description"]
        for u in uids:
            extra = ", ".join(f"{f}={field_value(tasks[u][f])}" for f in differ if f in tasks[u])
            out[u] = f"{label}, {extra or 'unit ' + u}"
        same = [u for u in uids if sum(out[w] == out[u] for w in uids) > 1]
        for u in same:
            out[u] += f" (unit {u})"
    return out


def unit_order(v: dict) -> tuple:
    return (v["task"], v["model"], v.get("recipe") or "", v["seed"], v["unit_id"], v["victim"] != "real")


def anchor(v: dict) -> str:
    return f"{v['unit_id']}-{v['victim']}"


def glance(victims: list[dict]) -> str:
    """One row per unit, its real victim beside its null control: what leaked, against which control."""
    real = [v for v in victims if v["victim"] == "real"]
    null = {v["unit_id"]: v for v in victims if v["victim"] == "null"}

    def counts(v: dict | None) -> list[str]:
        if v is None:  # no control beside it (a given head, null_victim: false)
            return ["-"] * 3
        tpr, passed, good = scores_by_rule(v)
        return [fmt(tpr, ".2f"), f"{fmt(passed, 'd')}/{v['n_members']}", f"{fmt(good, 'd')}/{v['n_members']}"]

    labels = unit_labels(victims)
    rows = [[f'<a href="#{esc(anchor(v))}">{esc(labels[v["unit_id"]])}</a>', *counts(v), *counts(null.get(v["unit_id"])),
             esc(verdict_text(v))] for v in sorted(real, key=unit_order)]
    cols = ["TPR", "pass", "good"]
    head = ["unit (task × model, recipe, seed)", *[f"real: {c}" for c in cols], *[f"null: {c}" for c in cols], "what was recovered"]
    return ("<h2>At a glance</h2><p class=\"note\">Each unit's victim beside its null control (the same recipe trained "
            "on a disjoint draw: what it gives is the attack's false-positive rate). TPR and pass: members above the "
            "membership threshold; good: members with a candidate within cosine 0.8 of them (SSIM 0.4 for images), "
            "reconstructions. Images are scored by SSIM, the published score; other inputs by cosine.</p>"
            + html_table(head, rows, "glance"))


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
     "training set by how many restarts hold them, how tight they are and how much of the weights (λ) the restarts "
     "give them; 'runs' counts the restarts a cluster holds"),
    ("good / passes / no", "a selection's nearest member: close enough to be a reconstruction / above the membership "
     "threshold only / neither"),
]
