"""One plain sentence on what an attack recovered from a victim: reconstructions, a membership
signal only, or nothing. Used by the run summary and the report, so both say the same."""

from __future__ import annotations

import math

GOOD_COSINE = 0.8  # a candidate this close to a member (cosine, attack space) counts as its reconstruction


def percent(rate: float) -> str:
    """A false-positive rate as every line and plot names it: 0.01 -> '1%', 0.05 -> '5%', 0.001 -> '0.1%'
    (a whole-percent format read 0.001 as '0%')."""
    return f"{100 * rate:.3g}%"


LINEAR = ("Linear head: the KKT condition fixes only a weighted sum of the members, so no member can be "
          "reconstructed from it; ")


def chance_p(n: int, passed: int, rate: float) -> float:
    """P(at least `passed` of `n` members pass) if each passed with probability `rate` alone, as a non-member does:
    how likely the count is without any membership signal (binomial tail)."""
    rate = min(max(rate, 0.0), 1.0)
    return float(sum(math.comb(n, k) * rate**k * (1 - rate) ** (n - k) for k in range(passed, n + 1)))


def _threshold(fpr: float, n_control: int | None) -> tuple[str, float]:
    """How the sentence names the threshold, and the false-positive rate it stands for: with fewer than 1/fpr
    non-members it is their highest score, which resolves 1/n_control, not `fpr`."""
    if n_control and n_control * fpr < 1:
        return (f"the threshold (the highest of {n_control} non-members: it resolves {percent(1 / n_control)} FPR, not "
                f"{percent(fpr)})"), 1 / n_control
    return f"the {percent(fpr)}-FPR threshold", fpr


def verdict(n: int, passed: int, fpr: float, good_cosine: int, good_ssim: int | None = None, linear: bool = False,
            public_good: int | None = None, beyond_public: int | None = None, measured: bool = True,
            n_control: int | None = None, passed_ssim: int | None = None) -> str:
    """`passed`: members above the FPR threshold by cosine (`passed_ssim`: by SSIM, which decides for pixel victims); `good_cosine`:
    members with a candidate at cosine > 0.8; `good_ssim`: members with one at SSIM > 0.4, for pixel victims (it
    then decides). A `linear` head (no hidden layer) is scored on its weighted sum: a membership signal at most.
    `public_good`: members the public inputs alone match by the deciding rule; `beyond_public`: members with a
    candidate that matches them by that rule and more closely than any public input. When the public inputs alone
    match some members, the sentence says how many reconstructions go beyond them. Not `measured`: the attack left
    no finite candidate (every run diverged), so there is no threshold and nothing was measured. `n_control`: the
    non-members the threshold was set on; a count of passing members that chance alone would give as often as 1
    in 20 (at the rate the threshold resolves) is not called a signal."""
    if not measured:
        return ("The attack left no usable candidate (every run diverged; attack_runs gives each run's status): "
                "nothing was measured, which is not the same as nothing recovered.")
    thr, rate = _threshold(fpr, n_control)
    count, by = (passed_ssim, " by SSIM") if passed_ssim is not None else (passed, "")  # images: the published score
    p = chance_p(n, count, rate) if count else 1.0
    chance = f", about as many as chance would (p = {p:.2f} at {percent(rate)} FPR)" if count and p >= 0.05 else ""
    if linear:
        if not count:
            return LINEAR + f"no member passes {thr} against that sum."
        return LINEAR + f"{count} of {n} members pass {thr} against that sum{by}{chance}."
    good, rule = (good_ssim, "SSIM > 0.4") if good_ssim is not None else (good_cosine, f"cosine > {GOOD_COSINE}")
    if good and public_good and beyond_public is not None:
        floor = f"the public inputs alone match {public_good} of the {n} members by that rule"
        if not beyond_public:
            return (f"{good} of {n} members have a candidate close to them ({rule}), but none closer than a public input "
                    f"({floor}): no evidence of reconstruction beyond the public data.")
        return (f"{good} of {n} members have a candidate close to them ({rule}): reconstructions, {beyond_public} of them "
                f"closer than any public input ({floor}).")
    if good:
        return f"{good} of {n} members have a candidate close to them ({rule}): reconstructions."
    if count and chance:
        return (f"{count} of {n} members pass {thr}{by}{chance}: no membership signal, and none has a candidate close "
                f"to it ({rule}).")
    if count:
        return (f"{count} of {n} members pass {thr}{by}, but none has a candidate close to it "
                f"({rule}): a membership signal, not a reconstruction.")
    return f"No member passes {thr}: nothing recovered."


def given_doubt(trainer: str | None, train_acc: float | None, oracle_residual: float | None, num_classes: int) -> str | None:
    """For a head attacked as given (a file, a checkpoint's own head), whether the task's members look like the rows it
    was trained on: a head fits its training rows (accuracy), and at a KKT point they explain its weights (oracle
    residual). None when nothing says otherwise; else one sentence: the counts above may not be about its training data."""
    if trainer != "given":
        return None
    said = []
    if train_acc is not None and not math.isnan(train_acc) and train_acc < 0.9:
        flipped = " (far below chance: is `classes:` in the reverse order of its outputs?)" if num_classes == 2 and train_acc < 0.25 else ""
        said.append(f"it classifies the task's members at accuracy {train_acc:.2f}{flipped}")
    if oracle_residual is not None and not math.isnan(oracle_residual) and oracle_residual > 0.5:
        said.append(f"the members explain little of its weights (oracle residual {oracle_residual:.2f})")
    if not said:
        return None
    return (f"Given head: {' and '.join(said)}. Either the task's members are not the rows it was trained on, or its inputs "
            "are not these (the card, L2 normalisation, the frame saved with it), or its training left it far from a KKT "
            "point of them (scikit-learn's defaults do); in the first two cases the counts above say nothing about its "
            "training data (docs/given-heads.md).")


UNEXPLAINED = 0.1  # an oracle residual above this: the members leave a tenth of the weights unexplained


def stationarity_doubt(bound: float | None, oracle_residual: float | None) -> str | None:
    """Where the members leave more than a tenth of the head's weights unexplained and its training stopped far enough
    from a stationary point to account for that (diagnostics/oracle.py: stationarity_bound, an upper bound on the
    oracle residual): the counts are then what this training allowed, not what the recipe leaks. None otherwise."""
    if bound is None or oracle_residual is None or math.isnan(bound) or math.isnan(oracle_residual):
        return None
    if oracle_residual <= UNEXPLAINED or bound <= UNEXPLAINED:
        return None
    return (f"The head's training stopped short of a stationary point: (gradient norm / (weight decay x |θ|))² is "
            f"{bound:.2g}, at least the {oracle_residual:.2g} of its weights the members leave unexplained, so that share "
            "may be unfinished training rather than members the weights do not hold; trained on (head.max_steps, "
            "head.grad_tol) the same recipe may give back more: read the counts as this head's, not the recipe's.")


NEAR_LINEAR = 0.8  # a mean share of first-layer units firing on a member above this: the head is near linear there


def linear_doubt(active: float | None) -> str | None:
    """Where most first-layer units fire on every training row (`active`: the mean share; near-linear heads measured
    0.87-1.00, those of the other recipes 0.35-0.50, docs/attack.md "Victim recipes"): the stationarity condition then
    has many other solutions, and a search that fits the weights need not find the rows. None otherwise."""
    if active is None or math.isnan(active) or active <= NEAR_LINEAR:
        return None
    return (f"Most of the head's first-layer units fire on every training row (mean share {active:.2f}): on those rows it "
            "is nearly one linear map, whose stationarity condition many other sets of points meet as well, so a search "
            "that fits its weights need not find the rows (docs/attack.md, \"Identifiability\"); a recipe that scales the "
            "inputs per dimension (`standardize`) gives heads whose units pick their rows.")


def pattern_doubt(own: int | None, n: int | None) -> str | None:
    """Where some of the head's `n` training rows share their activation pattern with another (diagnostics/patterns.py):
    the weights hold those only as their group's weighted sum. None otherwise."""
    if own is None or n is None or own >= n:
        return None
    return (f"Only {own} of the {n} training rows have an activation pattern of their own: the others share theirs with "
            "another row, and the head's weights hold such a group only as its weighted sum (any points of that region "
            f"with the same sum satisfy the stationarity condition as well): at most about {own} can come back, more only where a "
            "group's rows are alike, and a count near that is the head's limit, not the search's.")


def control_doubt(threshold: float | None, fpr: float, pixels: bool) -> str | None:
    """Where the non-members are matched as closely as a reconstruction (the FPR threshold above cosine 0.8; embedding
    victims, whose verdict reads the cosine): they are not a clean control. None otherwise."""
    if pixels or threshold is None or math.isnan(threshold) or threshold <= GOOD_COSINE:
        return None
    return (f"The {percent(fpr)}-FPR threshold is itself a reconstruction (cosine {threshold:.3f} > {GOOD_COSINE}): some "
            "non-members are matched as closely as members are: the head may have been trained on some of them, they may "
            "repeat members' content, or the backbone tells these inputs apart too little for that cosine to single one "
            "out; the counts against that threshold understate what it gives back.")


GROWING = 0.1  # a second half that adds this share of the members found (at least one) says the count still grows


def budget_note(good: int | None, half: int | None) -> str | None:
    """One sentence where the second half of the search (saturation.first_half) added a tenth or more of the `good`
    members that the whole search reconstructs (`half`: what the first half did): the count is then the budget's,
    not the head's. None where it added less, nothing was found, or there was no half (one bracket; rows written
    before the count)."""
    if not good or half is None:
        return None
    added = good - half
    if added < max(1, math.ceil(GROWING * good)):
        return None
    return (f"The search was still finding members when it stopped: its first half found {half}, the second half added "
            f"{added} of the {good}; a larger budget (attack restarts or brackets) may find more, so read the count as "
            "a lower bound.")


def doubts(trainer: str | None, train_acc: float | None, oracle_residual: float | None, num_classes: int,
           threshold: float | None, fpr: float, pixels: bool, good: int | None = None, good_half: int | None = None,
           *, bound: float | None = None, n: int | None = None, own: int | None = None,
           active: float | None = None) -> list[str]:
    """The sentences that qualify a victim's verdict (given_doubt, stationarity_doubt on the head's `bound`,
    linear_doubt on its `active` share and pattern_doubt on its `own` members with a pattern of their own, where fewer
    than its `n` members came back: pass None for a null victim, whose training rows are not the members;
    control_doubt, budget_note on `good` members reconstructed by the deciding rule, `good_half` of them by the first
    half of the search), for the run summary and the report."""
    missing = good is None or n is None or good < n
    return [d for d in (given_doubt(trainer, train_acc, oracle_residual, num_classes),
                        stationarity_doubt(bound, oracle_residual) if missing else None,
                        linear_doubt(active) if missing else None,
                        pattern_doubt(own, n) if missing else None,
                        control_doubt(threshold, fpr, pixels), budget_note(good, good_half)) if d]


def ssim_passed(row: dict) -> int | None:
    """A victims row's members above its SSIM threshold (pixel victims; None otherwise), from its SSIM TPR."""
    return round(row["ssim_tpr_at_fpr"] * row["n_members"]) if row.get("ssim_tpr_at_fpr") is not None else None


def by_rule(row: dict, pixel_col: str, cosine_col: str):
    """A victims row's value by its deciding rule: the SSIM column for pixel victims, the cosine one otherwise (None
    where not recorded, as in rows written before the column)."""
    return row.get(pixel_col) if row.get("good_ssim") is not None else row.get(cosine_col)


def scores_by_rule(row: dict) -> tuple:
    """A victims row's (TPR, members passing, members reconstructed) by its own rule: SSIM for images (the published
    score), cosine otherwise. The report and the leaderboard both read them here, so they agree."""
    passed = ssim_passed(row)
    if row.get("good_ssim") is not None and passed is not None:
        return row["ssim_tpr_at_fpr"], passed, row["good_ssim"]
    return row["tpr_at_fpr"], row["members_passed"], row["good_at_0_8"]
