"""Arrow schemas of every result table. Bump SCHEMA_VERSION on any incompatible change."""

from __future__ import annotations

import pyarrow as pa

SCHEMA_VERSION = 1

# Every row says what produced it.
PROVENANCE = [
    pa.field("unit_id", pa.string(), nullable=False),
    pa.field("task", pa.string(), nullable=False),
    pa.field("model", pa.string(), nullable=False),  # model card name
    pa.field("model_id", pa.string(), nullable=False),  # Hub id
    pa.field("revision", pa.string(), nullable=False),  # resolved commit
    pa.field("weights_source", pa.string()),
    pa.field("seed", pa.int64(), nullable=False),
    pa.field("settings", pa.string(), nullable=False),  # JSON: task + card + attack settings
    pa.field("versions", pa.string(), nullable=False),  # JSON: package versions, python, device
    pa.field("created_at", pa.timestamp("s", tz="UTC"), nullable=False),
]

VICTIMS = [
    pa.field("victim", pa.string(), nullable=False),  # "real" or "null" (the task's null_victim mode)
    pa.field("model_kind", pa.string()),  # backbone (the harness trained the head) | classifier (the checkpoint's own head)
    pa.field("n_members", pa.int64()),
    pa.field("n_nonmembers", pa.int64()),
    pa.field("num_classes", pa.int64()),
    pa.field("embed_dim", pa.int64()),
    pa.field("head_dims", pa.list_(pa.int64())),
    # the attacked head's own activation and bias layout (a given head's may differ from the task's head settings)
    pa.field("head_activation", pa.string()),
    pa.field("head_bias", pa.string()),
    pa.field("head_params", pa.int64()),
    pa.field("l2_normalized", pa.bool_()),
    pa.field("train_loss", pa.float64()),
    pa.field("grad_norm", pa.float64()),
    pa.field("train_steps", pa.int64()),
    pa.field("stopped_by", pa.string()),
    pa.field("train_acc", pa.float64()),
    pa.field("test_acc", pa.float64()),
    pa.field("oracle_residual", pa.float64()),
    # (grad_norm / (weight_decay x ||θ||))² for heads trained on a loss plus (wd/2)||θ||² (paper, dp-sgd): the oracle residual is at most this
    # (diagnostics/oracle.py: stationarity_bound); null for other penalties and given heads
    pa.field("stationarity_bound", pa.float64()),
    # how many members θ carries: (Σ p_i)² / Σ p_i², p_i = each member's part of the oracle fit (|λ_i|·‖∇θ Φ_i‖ for margins)
    pa.field("effective_members", pa.float64()),
    # members whose cut into W1's row space (kkt's `subspace: auto`: singular values >= 1e-4 x the largest, or above
    # the noise floor) keeps cosine > 0.8 to them: at most this many can come back from a search in that space
    # (diagnostics/row_space.py)
    pa.field("in_row_space", pa.int64()),
    # members whose activation pattern (which units fire, over the units that carry weight) no other member shares: members
    # that share one enter θ only through their group's λ-weighted sum, which the KKT conditions fix and nothing more
    # (diagnostics/patterns.py); null for heads without ReLU pieces (linear, tanh)
    pa.field("own_pattern", pa.int64()),
    pa.field("recipe", pa.string()),  # the victim recipe: TRANSFORM+TRAINER (e.g. standardize+paper)
    pa.field("transform", pa.string()),  # input transform published with the head: none | standardize | l2 | raw
    pa.field("trainer", pa.string()),  # paper | sklearn-mlp | default-torch | linear | dp-sgd | given
    pa.field("trainer_params", pa.string()),  # JSON: the trainer's parameters as the task set them
    pa.field("trainer_info", pa.string()),  # JSON: what the trainer recorded (validation loss, privacy spent)
    pa.field("dp_epsilon", pa.float64()),  # dp-sgd: the epsilon reached (at trainer_info's delta)
    pa.field("active_share", pa.float64()),  # mean share of first-layer units firing on a member (~1: near linear)
    pa.field("typical_norm", pa.float64()),  # median norm of a public input in the victim's frame (the prior's scale)
    pa.field("attack", pa.string()),
    pa.field("n_runs", pa.int64()),
    # the seeded attacks whose restarts these runs are, in order: one for `run`, one per Ray shard for `sweep`
    # (the same unit id either way: the candidates differ with the layout, so the row says which it was)
    pa.field("attack_shards", pa.list_(pa.struct([("restarts", pa.int64()), ("seed", pa.int64())]))),
    pa.field("n_candidates", pa.int64()),
    pa.field("score_space", pa.string()),
    pa.field("threshold", pa.float64()),
    pa.field("fpr", pa.float64()),
    # the non-members the threshold was measured on: all of them, or half where the attack started candidates at the
    # other half (kkt init: public | mixed; pipeline/stages.py: start_pool)
    pa.field("n_control", pa.int64()),
    pa.field("tpr_at_fpr", pa.float64()),
    pa.field("members_passed", pa.int64()),
    pa.field("mean_member_best", pa.float64()),
    pa.field("mean_nonmember_best", pa.float64()),
    pa.field("good_at_0_8", pa.int64()),  # members with best cosine > 0.8
    pa.field("good_at_0_9", pa.int64()),
    # the public inputs (the non-members the attacker holds) as a floor: members one of them alone matches at
    # cosine > 0.8, and members whose best candidate is above 0.8 and closer to them than any public input
    pa.field("public_good_at_0_8", pa.int64()),
    pa.field("good_at_0_8_beyond_public", pa.int64()),
    # identity (pixel) backbone only: members whose best candidate has SSIM > 0.4 (Haim et al.'s rule),
    # the SSIM that 1% of non-members reach, the members above it, and the members' mean best SSIM
    pa.field("good_ssim", pa.int64()),
    pa.field("ssim_threshold", pa.float64()),
    pa.field("ssim_tpr_at_fpr", pa.float64()),
    pa.field("mean_member_best_ssim", pa.float64()),
    pa.field("public_good_ssim", pa.int64()),  # the same floor by SSIM > 0.4 (identity backbone only)
    pa.field("good_ssim_beyond_public", pa.int64()),
    # what the first half of the search (kkt: its first half of brackets) reconstructs by the same rules: beside the
    # whole search's count, whether it was still growing with the budget (scoring/saturation.py); null with one bracket
    pa.field("good_at_0_8_first_half", pa.int64()),
    pa.field("good_ssim_first_half", pa.int64()),
    # the polish after the search (attacks/polish.py): steps taken and the pool's joint residual before and after; null
    # where it did not run (off, another attack, or a head it does not apply to)
    pa.field("polish_steps", pa.int64()),
    pa.field("polish_residual_before", pa.float64()),
    pa.field("polish_residual_after", pa.float64()),
    pa.field("polish_s", pa.float64()),
    pa.field("head_path", pa.string()),
    pa.field("embed_s", pa.float64()),
    pa.field("train_s", pa.float64()),
    pa.field("attack_s", pa.float64()),
    pa.field("score_s", pa.float64()),
    pa.field("device", pa.string()),
    pa.field("train_device", pa.string()),
    pa.field("embed_cache_hit", pa.bool_()),
]

ATTACK_RUNS = [
    pa.field("victim", pa.string(), nullable=False),
    pa.field("run_id", pa.int64(), nullable=False),
    pa.field("status", pa.string(), nullable=False),  # ok | diverged | pruned
    pa.field("iterations", pa.int64()),
    pa.field("final_loss", pa.float64()),
    pa.field("wall_s", pa.float64()),
    pa.field("run_settings", pa.string()),  # JSON
    pa.field("loss_curve", pa.list_(pa.float64())),
    # iterations | time_budget (the opt-in time_budget_s cut it) | pruned | diverged; null in older results
    pa.field("stopped_by", pa.string()),
]

CANDIDATES = [
    pa.field("victim", pa.string(), nullable=False),
    pa.field("candidate", pa.int64(), nullable=False),
    pa.field("run_id", pa.int64()),
    pa.field("label", pa.int64()),
    pa.field("lambda_", pa.float64()),  # its lambda; for a head of C > 1 regression outputs, the norm of its C lambdas
    pa.field("best_member", pa.int64()),  # nearest member (ground truth; scoring only)
    pa.field("best_member_score", pa.float64()),
    pa.field("vector", pa.list_(pa.float32())),  # centred candidate
    pa.field("lambdas", pa.list_(pa.float64())),  # the C lambdas of a C > 1 regression head (null for one output)
]

MATCHES = [
    pa.field("victim", pa.string(), nullable=False),
    pa.field("kind", pa.string(), nullable=False),  # member | nonmember
    pa.field("index", pa.int64(), nullable=False),  # position among members / non-members
    pa.field("source_row", pa.int64()),  # row in the data set's split
    pa.field("label", pa.int64()),
    pa.field("best_candidate", pa.int64()),
    pa.field("score", pa.float64()),  # best cosine (or SSIM) to any candidate
    pa.field("passed", pa.bool_()),  # above the fpr threshold
    # identity (pixel) backbone only: best SSIM to any candidate, that candidate (members), above the SSIM fpr threshold
    pa.field("ssim", pa.float64()),
    pa.field("ssim_candidate", pa.int64()),
    pa.field("ssim_passed", pa.bool_()),
]

# Added with selection and inversion (issue 4); new tables only, existing ones unchanged.
SELECTIONS = [  # one row per cluster representative, best first (no ground truth used to rank)
    pa.field("victim", pa.string(), nullable=False),
    pa.field("rank", pa.int64(), nullable=False),
    pa.field("candidate", pa.int64(), nullable=False),  # the medoid, an index into the candidates
    pa.field("size", pa.int64()),
    pa.field("support", pa.int64()),  # distinct runs in the cluster
    pa.field("tightness", pa.float64()),  # mean cosine to the medoid
    pa.field("confidence", pa.float64()),
    pa.field("method", pa.string()),
    pa.field("min_cosine", pa.float64()),
    pa.field("loss_factor", pa.float64()),  # runs pooled: loss within this factor of the best (null: all)
    pa.field("suppress_cosine", pa.float64()),  # near-duplicates of a better representative ranked last
    pa.field("weigh_lambda", pa.bool_()),  # confidence weighed by the cluster's median λ (null: rows before it)
    pa.field("duplicate_of", pa.int64()),  # rank of the representative this one nearly duplicates (-1: none)
    pa.field("matched_member", pa.int64()),  # ground truth, scoring only
    pa.field("member_score", pa.float64()),
    pa.field("hit", pa.bool_()),  # passed the threshold and recovered a member not recovered above it
]

SELECTION_SCORES = [  # precision / recall of the top-k, for the clustering and the lowest-loss baseline
    pa.field("victim", pa.string(), nullable=False),
    pa.field("strategy", pa.string(), nullable=False),  # cluster | lowest-loss
    pa.field("k", pa.int64(), nullable=False),
    pa.field("precision", pa.float64()),
    pa.field("recall", pa.float64()),
    pa.field("threshold", pa.float64()),
    pa.field("n_selected", pa.int64()),
    pa.field("select_s", pa.float64()),
]

INVERSIONS = [  # one row per (target, method)
    pa.field("victim", pa.string(), nullable=False),
    pa.field("target_kind", pa.string(), nullable=False),  # selected | member (the upper bound)
    pa.field("target", pa.int64(), nullable=False),  # candidate index (selected) or member index
    pa.field("rank", pa.int64()),  # selection rank (selected only)
    pa.field("method", pa.string(), nullable=False),  # retrieval | word-search | dip | identity
    pa.field("matched_member", pa.int64()),  # nearest member of the target (ground truth, scoring only)
    pa.field("target_member_cosine", pa.float64()),
    pa.field("cosine", pa.float64()),  # the inversion's embedding vs. the target
    pa.field("text", pa.string()),
    pa.field("reference_text", pa.string()),  # the matched member
    pa.field("image_png", pa.binary()),
    pa.field("reference_png", pa.binary()),
    pa.field("token_f1", pa.float64()),
    pa.field("content_f1", pa.float64()),  # F1 over content words (no stop words, no punctuation)
    pa.field("bleu", pa.float64()),
    pa.field("exact", pa.bool_()),
    pa.field("ssim", pa.float64()),
    pa.field("psnr", pa.float64()),
    pa.field("wall_s", pa.float64()),
    pa.field("details", pa.string()),  # JSON: corpus size, steps, ...
]

# The Ray runner's tables: one row per attack shard (its candidates, for resume) and per failure.
SHARDS = [
    pa.field("victim", pa.string(), nullable=False),
    pa.field("shard", pa.int64(), nullable=False),
    pa.field("shard_seed", pa.int64(), nullable=False),
    pa.field("restarts", pa.int64(), nullable=False),
    pa.field("n_runs", pa.int64()),
    pa.field("n_candidates", pa.int64()),
    pa.field("compute_s", pa.float64()),  # inside the task, the attack alone
    pa.field("num_cpus", pa.float64()),  # what the shard held (for CPU/GPU-hours)
    pa.field("num_gpus", pa.float64()),
    pa.field("node", pa.string()),
    pa.field("candidates", pa.list_(pa.list_(pa.float32()))),
    pa.field("labels", pa.list_(pa.int64())),
    pa.field("lambdas", pa.list_(pa.list_(pa.float64()))),
    pa.field("run_ids", pa.list_(pa.int64())),
    pa.field("runs", pa.string()),  # JSON list of RunRecord
]

FAILURES = [
    pa.field("stage", pa.string(), nullable=False),  # resolve | prepare | train | shard | finish
    pa.field("victim", pa.string()),
    pa.field("shard", pa.int64()),
    pa.field("error_type", pa.string(), nullable=False),
    pa.field("message", pa.string(), nullable=False),
    pa.field("traceback", pa.string()),
]

SCHEMAS: dict[str, pa.Schema] = {
    name: pa.schema(PROVENANCE + fields, metadata={"recon_harness_schema": str(SCHEMA_VERSION)})
    for name, fields in {
        "victims": VICTIMS,
        "attack_runs": ATTACK_RUNS,
        "candidates": CANDIDATES,
        "matches": MATCHES,
        "selections": SELECTIONS,
        "selection_scores": SELECTION_SCORES,
        "inversions": INVERSIONS,
        "shards": SHARDS,
        "failures": FAILURES,
    }.items()
}
