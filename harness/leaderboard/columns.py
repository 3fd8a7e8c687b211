"""The leaderboard's columns, in the table's order, each with what it means (the exports' headers and docs)."""

# (name, what it is); the order is the table's
COLUMNS = [
    ("model", "model card"), ("model_id", "Hub id (a local directory: local:FOLDER, its path left out; its revision names its files)"),
    ("kind", "backbone (the harness trained a victim head on its embeddings) or classifier (a fine-tuned checkpoint's own head)"),
    ("revision", "resolved commit (of the checkpoint, for a classifier)"), ("task", "task"),
    ("recipe", "victim recipe: input transform + trainer (TRANSFORM+TRAINER; 'checkpoint' for a classifier's own head; "
               "results written before recipes: none+paper, the only recipe then, or '-' for a given head)"),
    ("setting", "members, head, weight decay, trainer parameters, attack, and any other field in which the settings of "
                "the same model and task differ (FIELD=VALUE, dotted into nested fields; seeds pooled)"),
    ("setting_id", "hash of the setting without the recipe's transform and trainer (one setting, several recipes)"),
    ("seeds", "replicates pooled: each (task seed, attack seed) pair run counts once"),
    ("measured", "replicates whose attack left candidates to score: the attack columns (members_at_fpr to baseline_p20) are "
     "means over these; a replicate whose every run diverged measured nothing, which is not 0 recovered (0 here: they are empty)"),
    ("n_members", "members per victim"),
    ("members_at_fpr", "members whose best candidate passes the FPR threshold: a membership signal, not a "
     "reconstruction (by SSIM for pixel victims, as the report and the verdict; by cosine otherwise; mean over the "
     "measured replicates)"),
    ("tpr_at_fpr", "TPR at the FPR threshold (the same rule; mean)"),
    ("fpr", "the FPR asked of the threshold (n_control non-members resolve no rate below 1 / n_control)"),
    ("n_control", "non-members the threshold was set on (the fewest of the measured replicates)"),
    ("null_tpr_at_fpr", "the same (TPR, the same rule) for the null victim (the task's null_victim mode, disjoint by default): the control"),
    ("good_at_0_8", "members with a candidate at cosine > 0.8 (images/sentences, mean)"),
    ("good_at_0_9", "the same at 0.9"),
    ("good_ssim", "members with a candidate at SSIM > 0.4, Haim et al.'s rule (pixel `identity` backbone only, mean)"),
    ("good_beyond_public", "members reconstructed (SSIM > 0.4 for pixels, cosine > 0.8 otherwise) by a candidate closer to "
     "them than any public input the attacker holds (mean; empty for rows written before it)"),
    ("public_good", "members the public inputs alone match by that rule: what needs no attack (mean)"),
    ("good_first_half", "members reconstructed by that rule from the first half of the attack's brackets (mean; empty with "
     "one bracket and for rows written before it): beside the whole count, whether the search was still finding members"),
    ("selection_p20", "top-20 precision of the selection made without the members (mean over the seeds that ran "
     "selection: a --no-evidence run has none)"),
    ("baseline_p20", "the same for the lowest-KKT-loss baseline ranking (mean)"),
    ("victim_test_acc", "victim accuracy on non-members (mean)"),
    ("active_share", "share of the victim's first-layer units firing on a member (mean; near 1: a near-linear head)"),
    ("oracle_residual", "the share of the victim's weights its members leave unexplained at their best multipliers (mean; "
     "near 0: the weights are a combination of the members' gradients, what the attack inverts; near 1: they are not)"),
    ("stationarity_bound", "(gradient norm / (weight decay x |θ|))², for trainers whose objective is a mean loss plus weight "
     "decay: the oracle residual is at most this; where the two are close, what the members leave unexplained is "
     "unfinished training (mean; empty for other trainers)"),
    ("effective_members", "how many members the victim's weights carry (participation ratio of the oracle fit's "
     "per-member parts, mean; the search recovers the largest parts first)"),
    ("in_row_space", "members whose cut into the first layer's row space (kkt's subspace: auto) keeps cosine > 0.8: "
     "at most this many come back from a search there (mean)"),
    ("own_pattern", "members with an activation pattern no other member shares (mean): members that share one enter the "
     "weights only through their group's weighted sum, so they come back only where they are alike"),
    ("dp_epsilon", "dp-sgd only: the epsilon the victim's training reached (mean)"),
    ("runs", "attack restarts, all victims"),
    ("gpu_hours", "attack GPU-hours (shard time x GPUs held; a unit `run` wrote: its attack time on a GPU)"),
    ("cpu_hours", "attack CPU-hours (shard time x CPUs held; a unit `run` wrote: its attack time x torch threads)"),
    ("weights_source", "where the weights came from"), ("versions", "package versions (latest unit)"),
    ("created_at", "latest unit's time"), ("unit_ids", "the units pooled"),
    ("failed", "units of this setting that failed and left no rows (`recon-harness leaderboard DIR --failures` says why)"),
]
NAMES = [c for c, _ in COLUMNS]
