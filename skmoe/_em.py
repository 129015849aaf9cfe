"""The pieces of EM that act on responsibilities: the E-step, restarts of dead
experts and merge-and-split moves. Shared by EM and gradient training."""

import functools
import itertools

import numpy as np
from sklearn.cluster import KMeans

from ._backend import get_namespace, is_cupy_array, to_numpy
from ._math import exp_floored, log_softmax_rows, logsumexp_rows

# An expert whose load falls under min_expert_load is restarted on the rows the
# mixture fits worst; at most this many times per expert and EM run, so that the
# loop always ends.
MAX_RESTARTS_PER_EXPERT = 2

# Two experts whose predictive distributions are this close (mean total-variation
# distance over their rows) model the same thing: EM has fallen into a local
# optimum where some other expert must cover several regimes. A merge-and-split
# move then frees one of the two to take over part of the worst expert's rows.
REDUNDANT_DISTANCE = 0.3

# An expert whose load is under this fraction of the mean load of its branch
# is nearly idle: in a hierarchy a merge-and-split move may free it.
IDLE_LOAD = 0.25


def _on_host(function):
    """Run ``function`` on NumPy copies of its CuPy arguments and return its
    array result to the device. For the moves, which run a few times per fit
    and use host-only tools (k-means, sorting with ties kept stable)."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        xp = get_namespace(*args)
        result = function(*(to_numpy(a) if is_cupy_array(a) else a for a in args), **kwargs)
        return xp.asarray(result) if isinstance(result, np.ndarray) else result

    return wrapper


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


@_on_host
def restart_experts(resp, experts, sample_weight, row_log_lik, rng, rows=None):
    """Hand each expert in ``experts`` its own share of the worst-fitted rows
    (of ``rows``, a boolean mask, if given).

    Each gets ``1 / n_experts`` of the weighted rows, taken off the other
    experts. Before the first E-step there is no fit to judge, so the rows are
    drawn at random.
    """
    resp = resp.copy()
    candidates = np.flatnonzero((sample_weight > 0) & (True if rows is None else rows))
    n_take = max(1, candidates.size // resp.shape[1])
    if row_log_lik is None:
        order = rng.permutation(candidates)
    else:
        order = candidates[np.argsort(row_log_lik[candidates], kind="stable")]
    for i, k in enumerate(experts):
        rows = order[i * n_take : (i + 1) * n_take]
        resp[rows] = 0.0
        resp[rows, k] = 1.0
    return resp


@_on_host
def split_worst_expert(resp, free, Z, log_lik, sample_weight, rng, candidates):
    """Give expert ``free`` one half of the rows of the expert, among
    ``candidates``, that fits its own rows worst; the halves are 2-means
    clusters of those rows in ``Z``.

    An expert that straddles two regimes fits worst, and regimes are regions
    of the input, so a split in space separates them well enough for EM.
    """
    owner = resp.argmax(axis=1)
    mass = sample_weight @ resp
    fit = np.divide(
        (sample_weight[:, None] * resp * log_lik).sum(axis=0),
        mass,
        out=np.full_like(mass, np.inf),
        where=mass > 0,
    )
    worst = candidates[np.argmin(fit[candidates])]
    rows = np.flatnonzero((owner == worst) & (sample_weight > 0))
    if rows.size < 2:
        return restart_experts(resp, [free], sample_weight, None, rng)
    halves = KMeans(2, n_init=1, random_state=rng).fit_predict(
        Z[rows], sample_weight=sample_weight[rows]
    )
    rows = rows[halves == 1]
    resp = resp.copy()
    resp[rows] = 0.0
    resp[rows, free] = 1.0
    return resp


@_on_host
def routing_shares(log_gate, sample_weight):
    """Each expert's share of the rows routed (load) and of the gate mass
    (importance), weighted by ``sample_weight``; each sums to 1.

    A row is routed to its selected experts (top-k), or to its most probable
    one under a dense gate, and counts ``1 / n_selected`` towards each.
    """
    gate = exp_floored(log_gate)
    if np.all(gate > 0):  # dense gate: route to the most probable expert
        routed = np.zeros_like(gate)
        routed[np.arange(len(gate)), gate.argmax(axis=1)] = 1.0
    else:
        routed = (gate > 0) / np.count_nonzero(gate, axis=1, keepdims=True)
    total = sample_weight.sum()
    return sample_weight @ routed / total, sample_weight @ gate / total


@_on_host
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
        if weight.sum() > 0:
            d = np.average(to_numpy(distance(a, b)), weights=weight)
            if d < best:
                best, pair = d, (a, b)
    return pair


@_on_host
def idle_expert(resp, sample_weight, groups, exclude):
    """The least-loaded expert, not in ``exclude``, whose load is under
    ``IDLE_LOAD`` times the mean of its group, or None."""
    mass = sample_weight @ resp
    idle = [
        k for g in groups for k in g if k not in exclude and mass[k] < IDLE_LOAD * mass[g].mean()
    ]
    return min(idle, key=mass.__getitem__, default=None)
