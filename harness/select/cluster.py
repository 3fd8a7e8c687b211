"""Pool the candidates of every run of one victim, cluster them by cosine, rank the clusters.

Good candidates recur: independent restarts converge to the same training sample, bad ones
scatter (Oz et al. 2024). So the evidence for a cluster is its *support* (how many distinct runs
put a candidate in it) and its *tightness* (mean cosine of its members to its medoid). Uses no
ground truth: only the candidates, the run each came from, the runs' KKT losses and the lambdas.

Clustering: average-linkage agglomerative clustering on cosine distance cut at `min_cosine`
(default), or DBSCAN (density) with eps = 1 - min_cosine. Each cluster is represented by its
medoid, a real candidate (not a mean: averaged vectors can look like reconstructions without
being one, Runkel et al. 2024). Clusters are ranked by confidence = recurrence x tightness, where
recurrence = (support - 1) / (runs - 1) with several runs, or (size - 1) / (m_per_run - 1)
within a single run, times (`weigh_lambda`, the default) the cluster's median multiplier λ over the
largest cluster median: a member the runs found carries its share of θ in each of them, a configuration
that only fills in beside the members carries little (at 50 text members per class, matched candidates'
median λ was 25 times the unmatched ones'). Ties go to the lower run loss, then the larger lambda.

Data-free refinements, the first two measured on six independent pools of a CIFAR-10 pixel victim
(bench/selection.py, docs/evidence.md):
- `loss_factor` (default 10): only runs whose final KKT loss is within this factor of the best
  run's are pooled. The loss ranks the true basin below the spurious ones (algorithms.md section
  3); the scattered candidates of runs stuck an order of magnitude higher crowd the top clusters.
  Mean P@10 / P@20 0.73-0.78 / 0.53 without it, 0.82-0.83 / 0.59-0.60 with it (two runs).
- `suppress_cosine` (default off): a representative whose cosine to a better-ranked one exceeds
  this is a near-duplicate of it (average linkage can split one member's diffuse cloud in two); it
  moves behind every representative that is not a duplicate, and `duplicate_of` names the one it
  copies. It did not help on average there, so it is off unless asked for.
- `weigh_lambda` (default on): on seven pools (MiniLM text at 10 and 50 per class, CIFAR-10 pixels at n = 20,
  the quickstart's) it ranked higher than recurrence x tightness alone on four, level on two, lower on one (the
  quickstart's P@10, 0.90 against 1.00); at 50 per class recurrence alone ranked below the lowest-loss baseline
  (P@20 0.60 against 0.95 on a fortunes pair), weighed by λ it matched it (docs/evidence.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

from harness.attacks.base import lambda_size
from harness.errors import HarnessError

Method = Literal["agglomerative", "dbscan"]
MAX_POOL = 6000  # candidates clustered at once (O(m^2) memory); larger pools keep the lowest-loss runs


@dataclass
class Selection:
    """One representative per cluster, best first. Indices point into the full candidate list."""

    rep_index: np.ndarray  # (k,) candidate index of each cluster's medoid
    size: np.ndarray  # (k,) candidates in the cluster
    support: np.ndarray  # (k,) distinct runs in the cluster
    tightness: np.ndarray  # (k,) mean cosine of members of the cluster to the medoid (1 for singletons)
    confidence: np.ndarray  # (k,) in [0, 1]: recurrence x tightness (x the cluster's median λ share, `weigh_lambda`)
    cluster_of: np.ndarray  # (m,) cluster rank of each candidate (-1: non-finite or not pooled)
    duplicate_of: np.ndarray  # (k,) rank of the representative this one nearly duplicates (-1: none)
    method: str
    min_cosine: float
    n_runs: int
    params: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.rep_index)


def _cosine(x: torch.Tensor) -> np.ndarray:
    x = torch.nn.functional.normalize(x.double(), dim=1, eps=1e-12)
    return (x @ x.T).clamp(-1, 1).numpy()


def _cluster(sim: np.ndarray, method: Method, min_cosine: float) -> np.ndarray:
    if len(sim) == 1:
        return np.zeros(1, dtype=np.int64)
    dist = np.clip(1.0 - sim, 0.0, 2.0)
    np.fill_diagonal(dist, 0.0)
    if method == "agglomerative":
        from sklearn.cluster import AgglomerativeClustering

        model = AgglomerativeClustering(
            n_clusters=None, metric="precomputed", linkage="average", distance_threshold=1.0 - min_cosine
        )
        return model.fit_predict(dist)
    if method == "dbscan":
        from sklearn.cluster import DBSCAN

        lab = DBSCAN(eps=1.0 - min_cosine, min_samples=2, metric="precomputed").fit_predict(dist)
        noise = lab < 0  # noise points become singleton clusters (they are ranked last, not dropped)
        lab[noise] = lab.max() + 1 + np.arange(int(noise.sum()))
        return lab
    raise HarnessError("select.method", method, "unknown clustering method; use 'agglomerative' or 'dbscan'")


def select_candidates(
    candidates: torch.Tensor,
    run_ids: torch.Tensor | np.ndarray,
    run_losses: dict[int, float] | None = None,
    lambdas: torch.Tensor | np.ndarray | None = None,
    method: Method = "agglomerative",
    min_cosine: float = 0.7,
    loss_factor: float | None = 10.0,
    suppress_cosine: float | None = None,
    weigh_lambda: bool = True,
) -> Selection:
    """Cluster all candidates (centred, (m, d)) of one victim and rank one representative per cluster."""
    if not 0.0 < min_cosine < 1.0:
        raise HarnessError("select.min_cosine", min_cosine, "must lie strictly between 0 and 1")
    if loss_factor is not None and not loss_factor >= 1.0:
        raise HarnessError("select.loss_factor", loss_factor, "must be >= 1 (or null to pool every run)")
    if suppress_cosine is not None and not 0.0 < suppress_cosine <= 1.0:
        raise HarnessError("select.suppress_cosine", suppress_cosine, "must lie in (0, 1] (or null to keep near-duplicates in place)")
    m = len(candidates)
    if m == 0:
        raise HarnessError("candidates", 0, "nothing to select from; the attack produced no candidates")
    run_ids = np.asarray(run_ids, dtype=np.int64)
    run_losses = run_losses or {}
    loss = np.array([run_losses.get(int(r), np.nan) for r in run_ids], dtype=np.float64)
    loss = np.where(np.isfinite(loss), loss, np.inf)
    lam = lambda_size(lambdas, m)
    ok = torch.isfinite(candidates).all(1).numpy() & (candidates.norm(dim=1) > 0).numpy()
    pool = np.flatnonzero(ok)
    if len(pool) == 0:
        raise HarnessError("candidates", m, "every candidate is non-finite or zero (all runs diverged); nothing to select")
    best = loss[pool].min()
    if loss_factor is not None and np.isfinite(best) and best > 0:
        pool = pool[loss[pool] <= loss_factor * best]
    if len(pool) > MAX_POOL:
        pool = pool[np.lexsort((-lam[pool], loss[pool]))][:MAX_POOL]
    sim = _cosine(candidates[pool])
    lab = _cluster(sim, method, min_cosine)
    runs_total = len(np.unique(run_ids[pool]))
    per_run = max(int(np.bincount(run_ids[pool] - run_ids[pool].min()).max()), 1)

    clusters = [np.flatnonzero(lab == c) for c in np.unique(lab)]
    share = _lambda_share(lam, pool, clusters) if weigh_lambda else np.ones(len(clusters))
    reps, medoids, size, support, tight, conf, keys, members_of = [], [], [], [], [], [], [], []
    for c, idx in enumerate(clusters):
        sub = sim[np.ix_(idx, idx)]
        medoid = idx[int(np.argmax(sub.sum(1)))]
        t = float(sim[medoid, idx].mean()) if len(idx) > 1 else 1.0
        s = len(np.unique(run_ids[pool[idx]]))
        rec = (s - 1) / (runs_total - 1) if runs_total > 1 else (len(idx) - 1) / max(per_run - 1, 1)
        conf_c = float(np.clip(rec, 0, 1) * np.clip(t, 0, 1) * share[c])
        best_loss = float(loss[pool[idx]].min())
        reps.append(int(pool[medoid]))
        medoids.append(int(medoid))
        size.append(len(idx))
        support.append(s)
        tight.append(t)
        conf.append(conf_c)
        keys.append((-conf_c, -s, -len(idx), best_loss, -float(lam[pool[medoid]])))
        members_of.append(pool[idx])
    order = sorted(range(len(reps)), key=lambda i: keys[i])
    order, dup = _defer_duplicates(order, medoids, sim, suppress_cosine)
    cluster_of = np.full(m, -1, dtype=np.int64)
    for rank, i in enumerate(order):
        cluster_of[members_of[i]] = rank
    pick = lambda xs, dt: np.asarray([xs[i] for i in order], dtype=dt)  # noqa: E731
    return Selection(
        rep_index=pick(reps, np.int64), size=pick(size, np.int64), support=pick(support, np.int64),
        tightness=pick(tight, np.float64), confidence=pick(conf, np.float64), cluster_of=cluster_of,
        duplicate_of=dup, method=method, min_cosine=min_cosine, n_runs=runs_total,
        params={"pool": int(len(pool)), "loss_factor": loss_factor, "suppress_cosine": suppress_cosine,
                "weigh_lambda": weigh_lambda},
    )


def _lambda_share(lam: np.ndarray, pool: np.ndarray, clusters: list[np.ndarray]) -> np.ndarray:
    """(k,) each cluster's median |multiplier| (non-finite as 0; an MSE head's λ are signed) over the largest cluster
    median: 1 for the cluster the runs weigh most, near 0 for one they barely use; all 1 where no cluster has weight."""
    size = np.where(np.isfinite(lam), np.abs(lam), 0.0)
    med = np.array([float(np.median(size[pool[idx]])) for idx in clusters])
    top = med.max() if len(med) else 0.0
    return med / top if np.isfinite(top) and top > 0 else np.ones(len(clusters))


def _defer_duplicates(order: list[int], medoids: list[int], sim: np.ndarray, cut: float | None):
    """Move representatives whose cosine to a better one exceeds `cut` behind all the others.
    `medoids[i]` is cluster i's medoid as a row of `sim`; `order` ranks the clusters."""
    if cut is None:
        return order, np.full(len(order), -1, dtype=np.int64)
    pos = [medoids[i] for i in order]
    kept, deferred, copies = [], [], {}
    for rank, i in enumerate(order):
        if kept:
            s = sim[pos[rank], [pos[k] for k in kept]]
            if s.max() > cut:
                deferred.append(rank)
                copies[rank] = kept[int(np.argmax(s))]
                continue
        kept.append(rank)
    new = kept + deferred
    rank_of = {old: r for r, old in enumerate(new)}
    dup = np.array([rank_of[copies[old]] if old in copies else -1 for old in new], dtype=np.int64)
    return [order[r] for r in new], dup
