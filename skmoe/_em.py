"""The pieces of EM that act on responsibilities: the E-step, restarts of dead
experts and merge-and-split moves. Shared by EM and gradient training."""

import itertools
from functools import partial

import numpy as np
from sklearn.cluster import KMeans
from sklearn.utils.extmath import safe_sparse_dot

from ._backend import get_namespace, to_numpy
from ._backend._e_step import fused_posteriors
from ._chunks import in_row_chunks
from ._math import exp_floored, log_softmax_rows, logsumexp_rows
from ._optim import _threadpool_controller
from ._rows import distinct_rows

# An expert whose load falls under min_expert_load is restarted on the rows the
# mixture fits worst; at most this many times per expert and EM run, so that the
# loop always ends.
MAX_RESTARTS_PER_EXPERT = 2

# Two experts whose predictive distributions are this close (mean total-variation
# distance over their rows) model the same thing: EM has fallen into a local
# optimum where some other expert must cover several regimes. A merge-and-split
# move then frees one of the two to take over part of the worst expert's rows.
REDUNDANT_DISTANCE = 0.3

# k-means, which seeds EM and its moves, fits its centres on at most this many
# rows (see kmeans_labels). Lloyd's iterations on the host were most of a
# 10M-row GPU fit's start with 100,000; on 120k x 32 rows of regime data,
# K=8, three seeds, fits from 32,768 scored within 0.001 R^2 of those from
# 100,000 (benchmarks/results/gpu_notes.md).
KMEANS_ROWS = 1 << 15

# An expert whose load is under this fraction of the mean load of its branch
# is nearly idle: in a hierarchy a merge-and-split move may free it.
IDLE_LOAD = 0.25


def e_step(log_gate, log_lik):
    """Log responsibilities and per-row log-likelihood, both from log space."""
    log_joint = log_gate + log_lik
    row_log_lik = logsumexp_rows(log_joint)
    return log_joint - row_log_lik[:, None], row_log_lik


def posteriors(gate, Z, log_lik):
    """E-step: responsibilities for the experts, targets for the gate, and the
    per-row log-likelihood.

    Under a top-k gate the experts' responsibilities (and the likelihood) are
    those of the sparse model, so each expert is fitted on its routed rows
    only. The gate is fitted to the dense posterior over all experts: with the
    sparse one it would only learn its own choices back (with top_k=1 the
    posterior is the choice), never which other expert fits a row better.
    """
    fused = fused_posteriors(Z, log_lik, gate.top_k, gate.logits_standardized)  # on the GPU
    if fused is not None:
        return fused
    # in chunks of rows: a row's temporaries are a few arrays over the experts
    row_bytes = 8 * (Z.shape[1] + 8 * log_lik.shape[1])
    return in_row_chunks(partial(_posteriors_rows, gate), row_bytes, Z, log_lik)


def _posteriors_rows(gate, Z, log_lik):
    logits = gate.logits_standardized(Z)
    log_resp, row_log_lik = e_step(gate.log_proba_from_logits(logits), log_lik)
    resp = exp_floored(log_resp)
    if gate.top_k is None or gate.top_k >= log_lik.shape[1]:
        return resp, resp, row_log_lik
    dense_log_resp, _ = e_step(log_softmax_rows(logits), log_lik)
    return resp, exp_floored(dense_log_resp), row_log_lik


def check_init_resp(init, n_samples, n_experts):
    """Validate user-given initial responsibilities and normalise their rows."""
    resp = np.asarray(init, dtype=np.float64)
    if resp.shape != (n_samples, n_experts):
        raise ValueError(
            f"init must have shape (n_samples, n_experts) = ({n_samples}, {n_experts}), "
            f"got {resp.shape}."
        )
    if not np.all(np.isfinite(resp)) or np.any(resp < 0):
        raise ValueError("init must hold finite, non-negative responsibilities.")
    row_sums = resp.sum(axis=1, keepdims=True)
    if np.any(row_sums <= 0):
        raise ValueError("Every row of init must have a positive sum.")
    return resp / row_sums


def restart_experts(resp, experts, sample_weight, row_log_lik, rng, rows=None):
    """Hand each expert in ``experts`` its own share of the worst-fitted rows
    (of ``rows``, a boolean mask, if given).

    Each gets ``1 / n_experts`` of the candidate rows' weight, taken off the
    other experts. Rows that fit equally badly (copies of one row) go to the
    same expert, so a row of weight 3 is handed on as three copies of it
    would be. Before the first E-step there is no fit to judge, so the rows
    are drawn at random.
    """
    xp = get_namespace(resp)
    resp = resp.copy()
    candidates = xp.flatnonzero((sample_weight > 0) & (True if rows is None else rows))
    if row_log_lik is None:
        order = candidates[xp.asarray(rng.permutation(candidates.size))]
        badness = xp.arange(order.size)  # every row its own group
    else:
        order = candidates[xp.argsort(row_log_lik[candidates], kind="stable")]
        badness = row_log_lik[order]
    weight = sample_weight[order]
    before = xp.cumsum(weight) - weight  # the weight of the worse-fitted rows
    # a group of equal rows starts where its first row does
    start = xp.searchsorted(badness, badness, side="left")
    share = (before[start] / (weight.sum() / resp.shape[1])).astype(int)
    for i, k in enumerate(experts):
        rows = order[share == i]
        resp[rows] = 0.0
        resp[rows, k] = 1.0
    return resp


def split_worst_expert(resp, free, Z, log_lik, sample_weight, rng, candidates):
    """Give expert ``free`` one half of the rows of the expert, among
    ``candidates``, that fits its own rows worst (see :func:`worst_expert`
    and :func:`split_expert`)."""
    worst = worst_expert(resp, log_lik, sample_weight, candidates)
    return split_expert(resp, free, worst, Z, sample_weight, rng)


def worst_expert(resp, log_lik, sample_weight, candidates):
    """The expert, among ``candidates``, whose mean log-likelihood on its own
    rows is lowest."""
    mass = to_numpy(sample_weight @ resp)
    fit = to_numpy(sample_weight @ (resp * log_lik))
    fit = np.divide(fit, mass, out=np.full_like(mass, np.inf), where=mass > 0)
    # of experts that fit equally badly up to rounding (on tiny data every
    # expert can fit its rows exactly), the heaviest: a choice that rounding,
    # which differs between a weighted row and its copies, cannot flip
    fit = fit[candidates]
    tied = fit <= fit.min() + 1e-9 * abs(fit.min())
    return int(candidates[np.flatnonzero(tied)[np.argmax(mass[candidates][tied])]])


def split_expert(resp, free, expert, Z, sample_weight, rng):
    """Give expert ``free`` one half of the rows ``expert`` owns; the halves
    are 2-means clusters of those rows in ``Z``.

    An expert that straddles two regimes fits worst, and regimes are regions
    of the input, so a split in space separates them well enough for EM.
    None when the expert's rows are copies of one row: there is no split.
    """
    xp = get_namespace(resp)
    rows = xp.flatnonzero((resp.argmax(axis=1) == expert) & (sample_weight > 0))
    if rows.size:
        rows = rows[kmeans_labels(Z[rows], sample_weight[rows], 2, rng) == 1]
    if rows.size == 0:
        return None
    resp = resp.copy()
    resp[rows] = 0.0
    resp[rows, free] = 1.0
    return resp


def kmeans_labels(Z, sample_weight, n_clusters, rng):
    """Weighted k-means cluster labels of the rows of ``Z``.

    k-means sees each distinct row of positive weight once, with its summed
    weight (see :func:`skmoe._rows.distinct_rows`): a row of weight 3 starts
    EM as three copies of it would, in any order of the rows. With fewer
    distinct rows than clusters, the clusters left over stay empty (EM
    restarts their experts).

    The centres are fitted on at most ``KMEANS_ROWS`` rows drawn at random,
    and every row then goes to its nearest centre (on the device of ``Z``):
    k-means only seeds EM, and a sample that size places the centres about as
    well as all rows would, at a fraction of the cost on millions of rows.
    """
    xp = get_namespace(Z)
    sample = slice(None)
    if Z.shape[0] > KMEANS_ROWS:
        # a Generator draws without replacement in O(KMEANS_ROWS); RandomState
        # shuffles all n (0.3 s at 10M rows)
        draw = np.random.default_rng(rng.randint(np.iinfo(np.int32).max))
        sample = xp.asarray(np.sort(draw.choice(Z.shape[0], KMEANS_ROWS, replace=False)))
    Z_sample = to_numpy(Z[sample])
    distinct = distinct_rows(Z_sample, None, to_numpy(sample_weight[sample]))
    kmeans = KMeans(min(n_clusters, distinct.rows.size), n_init=1, random_state=rng)
    # on one thread: scikit-learn's Lloyd iterations add their threads'
    # partial sums in the order the threads finish, so that on many cores
    # the centres, and the EM that starts from them, changed from run to run
    with _threadpool_controller().limit(limits=1):
        kmeans.fit(Z_sample[distinct.rows], sample_weight=distinct.weight)
    centres = xp.asarray(kmeans.cluster_centers_, dtype=Z.dtype)
    # nearest centre, the same sums on either device: |z - c|^2 less the
    # |z|^2 that all centres share
    return ((centres**2).sum(axis=1) - 2 * safe_sparse_dot(Z, centres.T)).argmin(axis=1)


def routing_shares(log_gate, sample_weight):
    """Each expert's share of the rows routed (load) and of the gate mass
    (importance), weighted by ``sample_weight``; each sums to 1.

    A row is routed to its selected experts (top-k), or to its most probable
    one under a dense gate, and counts ``1 / n_selected`` towards each.
    """
    xp = get_namespace(log_gate)
    gate = exp_floored(log_gate)
    if bool(xp.all(gate > 0)):  # dense gate: route to the most probable expert
        routed = xp.zeros_like(gate)
        routed[xp.arange(len(gate)), gate.argmax(axis=1)] = 1.0
    else:
        selected = (gate > 0).astype(gate.dtype)
        routed = selected / selected.sum(axis=1, keepdims=True)
    total = sample_weight.sum()
    return to_numpy(sample_weight @ routed / total), to_numpy(sample_weight @ gate / total)


def redundant_pair(distance, resp, sample_weight, groups):
    """The pair of experts of one group whose predictive distributions differ
    least, as ``(keep, free)``, if they are closer than ``REDUNDANT_DISTANCE``.

    ``distance(a, b)`` gives per-row total-variation distances; they are
    averaged over the rows either expert is responsible for.
    """
    best, pair = REDUNDANT_DISTANCE, None
    pairs = itertools.chain.from_iterable(itertools.combinations(g, 2) for g in groups)
    for a, b in pairs:
        weight = sample_weight * (resp[:, a] + resp[:, b])
        total = float(weight.sum())
        if total > 0:
            d = float(weight @ distance(a, b)) / total  # on the device of the arrays
            if d < best:
                best, pair = d, (a, b)
    return pair


def idle_expert(resp, sample_weight, groups, exclude):
    """The least-loaded expert, not in ``exclude``, whose load is under
    ``IDLE_LOAD`` times the mean of its group, or None."""
    mass = to_numpy(sample_weight @ resp)
    idle = [
        k for g in groups for k in g if k not in exclude and mass[k] < IDLE_LOAD * mass[g].mean()
    ]
    return min(idle, key=mass.__getitem__, default=None)
