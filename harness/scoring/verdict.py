"""One plain sentence on what an attack recovered from a victim: reconstructions, a membership
signal only, or nothing. Used by the run summary and the report, so both say the same."""

from __future__ import annotations

GOOD_COSINE = 0.8  # a candidate this close to a member (cosine, attack space) counts as its reconstruction


LINEAR = ("Linear head: the KKT condition fixes only a weighted sum of the members, so no member can be "
          "reconstructed from it; ")


def verdict(n: int, passed: int, fpr: float, good_cosine: int, good_ssim: int | None = None, linear: bool = False,
            public_good: int | None = None, beyond_public: int | None = None, measured: bool = True) -> str:
    """`passed`: members above the FPR threshold; `good_cosine`: members with a candidate at cosine
    > 0.8; `good_ssim`: members with one at SSIM > 0.4, for pixel victims (it then decides). A `linear`
    head (no hidden layer) is scored on its weighted sum: a membership signal at most. `public_good`:
    members the public inputs alone match by the deciding rule; `beyond_public`: members with a
    candidate that matches them by that rule and more closely than any public input. When the public
    inputs alone match some members, the sentence says how many reconstructions go beyond them. Not `measured`: the
    attack left no finite candidate (every run diverged), so there is no threshold and nothing was measured."""
    if not measured:
        return ("The attack left no usable candidate (every run diverged; attack_runs gives each run's status): "
                "nothing was measured, which is not the same as nothing recovered.")
    if linear:
        signal = f"{passed} of {n} members pass the {fpr:.0%}-FPR threshold against that sum" if passed else \
            f"no member passes the {fpr:.0%}-FPR threshold against that sum"
        return LINEAR + signal + "."
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
    if passed:
        return (f"{passed} of {n} members pass the {fpr:.0%}-FPR threshold, but none has a candidate close to it "
                f"({rule}): a membership signal, not a reconstruction.")
    return f"No member passes the {fpr:.0%}-FPR threshold: nothing recovered."
