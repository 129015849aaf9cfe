"""Where a fit starts: the first responsibilities (k-means, nested k-means
for a hierarchy, random or given), or a previous fit's E-step; and a
solver's run from there."""

import copy

from .._backend import get_namespace
from .._em import check_init_resp, kmeans_labels, posteriors


def initial_resp(plan, Z, sample_weight, rng, init_resp=None):
    """The first responsibilities of ``plan.n_experts`` experts on the
    standardised rows ``Z``, in Z's floating type."""
    n_samples, n_experts = Z.shape[0], plan.n_experts
    xp = get_namespace(Z)
    if isinstance(plan.init, str) and plan.init == "random":
        resp = rng.uniform(size=(n_samples, n_experts))
        return xp.asarray(resp / resp.sum(axis=1, keepdims=True), dtype=Z.dtype)
    if isinstance(plan.init, str):  # "kmeans" on the gate's standardised input
        labels = _nested_kmeans(Z, sample_weight, plan.branching, rng)
        return xp.eye(n_experts, dtype=Z.dtype)[labels]
    if init_resp is None:
        init_resp = check_init_resp(plan.init, n_samples, n_experts)
    return xp.asarray(init_resp, dtype=Z.dtype)


def new_start(
    plan,
    likelihood,
    X,
    sample_weight,
    rng,
    init_resp=None,
    *,
    resp=None,
    gate_coefficients=None,
    Z=None,
):
    """A new gate and experts, the standardised rows and the first
    responsibilities: ``resp`` where given, else the plan's start. The gate's
    M-steps start from ``gate_coefficients`` where given (see
    :meth:`~skmoe.gates.SoftmaxGate.coefficients`), else from zero. ``Z``,
    the rows standardised by an earlier start on the same rows and weights,
    is used as it is (the gate's standardisation is theirs)."""
    gate = plan.make_gate()
    gate.init_scaler(X, sample_weight)
    if gate_coefficients is not None:
        gate.set_coefficients(gate_coefficients)
    experts = plan.make_experts(likelihood, X.shape[1], rng, gate.scaler_)
    Z = gate.standardize(X) if Z is None else Z
    if resp is None:
        resp = initial_resp(plan, Z, sample_weight, rng, init_resp)
    if plan.solver == "gradient":
        # EM's first gate M-step: a gate leaning towards the initial
        # partition, soft enough for the gradient to move it
        gate.fit_standardized(Z, resp * sample_weight[:, None])
    return gate, experts, Z, resp


def fit_from(solver, label, start, X, y, sample_weight, rng):
    """``solver``'s fit from ``start``, ``(gate, experts, Z, resp)``, with its
    plan's routing set on the gate; printed as the start ``label``."""
    gate, experts, Z, resp = start
    gate.set_params(**solver.plan.gate_options())
    solver.printer.init_start(label)
    result = solver.fit(gate, experts, X, Z, y, sample_weight, resp, rng)
    solver.printer.init_end(result.lower_bound, result.converged)
    return result


def warm_start(likelihood, fitted, X, y):
    """Copies of a fitted ``(gate, experts, params)`` (so that a failing fit
    leaves them intact), the standardised rows and their E-step."""
    gate, experts, params = copy.deepcopy(fitted)
    Z = gate.standardize(X)
    log_lik = likelihood.experts_log_lik(experts, X, y, params)
    return gate, experts, Z, posteriors(gate, Z, log_lik)[0]


def _nested_kmeans(Z, sample_weight, branching, rng):
    """Leaf labels from k-means, level by level: each cluster of one level is
    split into ``branching[l]`` clusters, so the partition fits the tree of
    gates (one level: plain k-means)."""
    xp = get_namespace(Z)
    labels = xp.zeros(Z.shape[0], dtype=int)
    for n_children in branching:
        split = xp.empty_like(labels)
        for parent in range(int(labels.max()) + 1):
            rows = xp.flatnonzero(labels == parent)
            children = xp.arange(rows.size) % n_children  # too few rows to cluster
            if rows.size >= n_children:
                children = kmeans_labels(Z[rows], sample_weight[rows], n_children, rng)
            split[rows] = parent * n_children + children
        labels = split
    return labels
