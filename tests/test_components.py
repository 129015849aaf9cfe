"""The gate, the expert sets and the log-space helpers against references."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from _bounds import gradient_floor, logistic_proba_bound, scaled_gradient
from _cupy_ridge import CupyRidge
from scipy.optimize import approx_fprime
from scipy.special import log_softmax, logsumexp, softmax
from sklearn.linear_model import LogisticRegression, Ridge

import skmoe._design
import skmoe._em
from skmoe import MixtureOfExpertsRegressor
from skmoe._backend._scaling import fit_scaler, standardize
from skmoe._design import Design
from skmoe._math import logsumexp_rows, row_max, row_sum, softmax_cross_entropy
from skmoe._optim import (
    _CG_RTOL,
    _weighted_sample,
    conjugate_gradient,
    fit_softmax_newton,
    sigmoid_cross_entropy,
)
from skmoe.experts import EstimatorExperts, LinearExperts, LogisticExperts
from skmoe.experts._estimators import takes_device_arrays
from skmoe.gates import SoftmaxGate
from skmoe.gates._balance import importance_cv_loss, switch_loss


def test_row_helpers_match_numpy(rng):
    a = rng.normal(size=(50, 3, 4)) * 300
    a[0, 0] = -np.inf
    np.testing.assert_array_equal(row_max(a), a.max(axis=-1))
    np.testing.assert_allclose(row_sum(a[1:]), a[1:].sum(axis=-1))
    np.testing.assert_allclose(logsumexp_rows(a), logsumexp(a, axis=-1), rtol=1e-12)


@pytest.mark.parametrize("shape", [(30, 4), (30, 3, 5)])
def test_softmax_cross_entropy_and_gradient(rng, shape):
    logits = rng.normal(size=shape)
    targets = rng.uniform(size=shape)
    loss, grad, proba = softmax_cross_entropy(logits, targets)
    assert loss == pytest.approx(-np.sum(targets * log_softmax(logits, axis=-1)))
    np.testing.assert_allclose(proba, np.exp(log_softmax(logits, axis=-1)))
    numeric = approx_fprime(
        logits.ravel(), lambda z: softmax_cross_entropy(z.reshape(shape), targets)[0], 1e-6
    )
    np.testing.assert_allclose(grad.ravel(), numeric, rtol=1e-4, atol=1e-5)


def test_switch_loss_by_hand():
    proba = np.array([[0.7, 0.2, 0.1], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8], [0.5, 0.4, 0.1]])
    # tops: 0, 0, 2, 0 -> f = (3/4, 0, 1/4); P = mean rows = (0.475, 0.25, 0.275)
    value, _ = switch_loss(proba, np.ones(4))
    assert value == pytest.approx(3 * (0.75 * 0.475 + 0.25 * 0.275))
    uniform = np.full((3, 3), 1 / 3)
    assert switch_loss(np.eye(3), np.ones(3))[0] == pytest.approx(1.0)
    assert switch_loss(uniform + 1e-9 * np.eye(3), np.ones(3))[0] == pytest.approx(1.0)


def test_importance_cv_loss_by_hand():
    proba = np.array([[0.7, 0.3], [0.9, 0.1]])
    weights = np.array([1.0, 3.0])
    # importance = (0.7 + 2.7, 0.3 + 0.3) = (3.4, 0.6); mean 2, std 1.4
    value, _ = importance_cv_loss(proba, weights)
    assert value == pytest.approx((1.4 / 2) ** 2)
    assert importance_cv_loss(np.full((4, 2), 0.5), np.ones(4))[0] == pytest.approx(0.0)


@pytest.mark.parametrize("loss", [switch_loss, importance_cv_loss])
def test_balance_loss_gradients(rng, loss):
    logits = rng.normal(size=(25, 4))
    weights = rng.uniform(0.5, 2.0, size=25)

    def value(z):
        return loss(np.exp(log_softmax(z.reshape(25, 4), axis=1)), weights)[0]

    _, grad = loss(np.exp(log_softmax(logits, axis=1)), weights)
    # f in the switch loss is piecewise constant: the step must not move any argmax
    numeric = approx_fprime(logits.ravel(), value, 1e-7)
    np.testing.assert_allclose(grad.ravel(), numeric, rtol=1e-4, atol=1e-6)


def test_balanced_gate_spreads_its_mass(rng):
    X = rng.normal(size=(500, 2))
    resp = np.zeros((500, 3))
    resp[:, 0] = X[:, 0] < 1.0  # one expert takes ~84% of the rows
    resp[:, 1] = (X[:, 0] >= 1.0) & (X[:, 1] < 0)
    resp[:, 2] = (X[:, 0] >= 1.0) & (X[:, 1] >= 0)
    plain = SoftmaxGate(alpha=0.1).fit(X, resp)
    balanced = SoftmaxGate(alpha=0.1, balance_loss="cv", balance_coef=1.0).fit(X, resp)
    cv = [importance_cv_loss(g.predict_proba(X), np.ones(500))[0] for g in (plain, balanced)]
    assert cv[1] < 0.5 * cv[0]


def test_sigmoid_cross_entropy_and_gradient(rng):
    logits = rng.normal(size=(30, 3)) * 3
    positive = rng.uniform(size=(30, 1)) > 0.5
    weights = rng.uniform(size=(30, 3))
    loss, grad = sigmoid_cross_entropy(logits, positive, weights)
    p = 1 / (1 + np.exp(-logits))
    assert loss == pytest.approx(-np.sum(weights * np.where(positive, np.log(p), np.log1p(-p))))
    numeric = approx_fprime(
        logits.ravel(),
        lambda z: sigmoid_cross_entropy(z.reshape(30, 3), positive, weights)[0],
        1e-6,
    )
    np.testing.assert_allclose(grad.ravel(), numeric, rtol=1e-4, atol=1e-5)


def _soft_targets(rng, n=400, d=3, k=4):
    X = rng.normal(size=(n, d))
    resp = np.exp(X @ rng.normal(size=(d, k)))
    return X, resp / resp.sum(axis=1, keepdims=True)


def test_gate_solvers_agree(rng, monkeypatch):
    # truncated Newton (the gate's fit) from zeros and from a far start, with
    # the Gram matrices of its preconditioner formed either way, or its
    # curvature taken from every fourth row (and its blocks from every fourth
    # of those), against scikit-learn's LogisticRegression on the rows
    # repeated once per expert, weighted by the soft targets: the same
    # objective
    monkeypatch.setattr(skmoe._design, "CURVATURE_ROWS", 100)
    monkeypatch.setattr(skmoe._design, "BLOCK_ROWS", 25)
    X, resp = _soft_targets(rng)
    gate = SoftmaxGate(alpha=0.1, tol=1e-10).fit(X, resp)
    Z, row_weight = gate.standardize(X), resp.sum(axis=1)
    loss = gate._logit_loss(resp, row_weight)
    far = 5 * rng.normal(size=(3, 4))
    options = dict(alpha=0.1, max_iter=100, tol=1e-10)
    solutions = [
        (gate.coef_, gate.intercept_),
        *(
            fit_softmax_newton(design, loss, row_weight, far, np.zeros(4), **options)[:2]
            for design in (Design(Z), Design(Z, n_experts=4), _sampled_curvature(Z))
        ),
    ]
    reference = LogisticRegression(C=1 / 0.1, tol=1e-10, max_iter=10_000).fit(
        np.repeat(Z, 4, axis=0), np.tile(np.arange(4), len(Z)), sample_weight=resp.ravel()
    )
    solutions.append((reference.coef_.T, reference.intercept_))
    # each stops at a scaled gradient of tol, or where rounding stops it
    # (L-BFGS's relative-decrease test, too), and is as near the minimiser
    # as its gradient says
    for coef, intercept in solutions:
        solution = (Z, resp, 0.1, coef.T, intercept)
        assert scaled_gradient(*solution) <= max(1e-10, gradient_floor(*solution))
    bounds = [logistic_proba_bound(Z, resp, 0.1, coef.T, b) for coef, b in solutions]
    proba = [softmax(Z @ coef + intercept, axis=1) for coef, intercept in solutions]
    for other in range(1, len(solutions)):
        np.testing.assert_allclose(proba[other], proba[0], rtol=0, atol=bounds[0] + bounds[other])


def _sampled_curvature(Z):
    design = Design(Z)
    sample, rows = design.curvature
    assert rows == slice(None, None, 4)
    np.testing.assert_array_equal(sample.Z, Z[::4])
    blocks, block_rows = sample.block_rows
    assert block_rows == slice(None, None, 4)
    np.testing.assert_array_equal(blocks.Z, Z[::16])
    return design


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize(
    ("sample", "size"), [("curvature", "CURVATURE_ROWS"), ("block_rows", "BLOCK_ROWS")]
)
def test_row_samples_only_above_twice_their_size(rng, monkeypatch, sparse, sample, size):
    Z = rng.normal(size=(200, 3))
    monkeypatch.setattr(skmoe._design, size, 101)
    design = Design(sp.csr_matrix(Z) if sparse else Z)
    assert getattr(design, sample) == (design, slice(None))
    monkeypatch.setattr(skmoe._design, size, 100)
    sampled, rows = getattr(Design(sp.csr_matrix(Z) if sparse else Z), sample)
    assert rows == slice(None, None, 2)
    np.testing.assert_array_equal(sampled.Z.toarray() if sparse else sampled.Z, Z[::2])


def test_curvature_from_all_rows_where_the_sample_has_no_weight(rng, monkeypatch):
    monkeypatch.setattr(skmoe._design, "CURVATURE_ROWS", 100)
    design, row_weight = Design(rng.normal(size=(400, 3))), np.ones(400)
    row_weight[::4] = 0.0
    sample = _weighted_sample(design, design.curvature, row_weight, row_weight.sum())
    assert sample == (design, slice(None), 1.0)
    row_weight[0] = 1.0  # the sample's share of the weight scales its Hessian
    sample = _weighted_sample(design, design.curvature, row_weight, row_weight.sum())
    assert sample[2] == 1 / 301


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conjugate_gradients_follow_weak_curvature(dtype):
    # a sharp gate's Hessian: every row's p (1 - p) is small, so are all the
    # curvatures (here 1e-4 to 1e-7), yet they are real, far above rounding.
    # Its steps must solve the system to the stopping residual as well as
    # those of the same Hessian at scale 1, in float32 as on the GPU
    curvature = np.logspace(-4, -7, 6).astype(dtype)[:, None]
    grad = np.ones((6, 1), dtype=dtype)
    step = conjugate_gradient(grad, lambda v: curvature * v, lambda r: r)
    # six distinct curvatures: exact conjugate gradients end within six
    # iterations; float32 rounding (relative 1e-7 per product, condition 1e3)
    # costs well under a hundredth of the residual
    residual = np.linalg.norm(curvature * step - grad)
    assert residual <= (_CG_RTOL + 0.01) * np.linalg.norm(grad)


def test_gate_is_stationary_at_its_optimum(rng):
    # at the optimum the soft-target gradient vanishes: Z.T (p - r) + alpha coef = 0
    X, resp = _soft_targets(rng)
    # (to tol, or to where rounding of the objective stops Newton's line search)
    gate = SoftmaxGate(alpha=0.5, tol=1e-12).fit(X, resp)
    solution = (gate.standardize(X), resp, 0.5, gate.coef_.T, gate.intercept_)
    assert scaled_gradient(*solution) <= max(1e-12, gradient_floor(*solution))


def _design(X, formed):
    """None, or the design a fit makes of X: standardised, with the rows'
    outer products formed."""
    if not formed:
        return None
    scaler = fit_scaler(X, np.ones(len(X)))
    design = Design(standardize(scaler, X), scaler, n_experts=8)
    assert design.has_outer_products
    return design


def test_design_grams_are_the_weighted_products(rng):
    Z = rng.normal(size=(500, 4))
    weights = rng.uniform(size=(500, 3))
    grams = Design(Z, n_experts=3).grams(weights)
    Z1 = np.hstack([Z, np.ones((500, 1))])
    terms = weights.T[:, :, None, None] * Z1[None, :, :, None] * Z1[None, :, None, :]
    # float64 sums of 500 terms: each within 500 eps of the sum of |terms|
    bound = 500 * np.finfo(float).eps * np.abs(terms).sum(axis=1)
    assert np.all(np.abs(grams - terms.sum(axis=1)) <= bound)
    assert np.array_equal(grams, grams.transpose(0, 2, 1))


def test_design_maps_coefficients_both_ways(rng):
    X = rng.normal(size=(50, 3)) * [1.0, 100.0, 0.0] + [5.0, -3.0, 7.0]  # the last constant
    design = _design(X, formed=True)
    coef, intercept = rng.normal(size=(2, 3)), rng.normal(size=2)
    coef[:, 2] = 0.0  # a constant feature's coefficient is 0 in Z's coordinates
    theta = design.from_original(coef, intercept)
    np.testing.assert_allclose(design.Z1 @ theta.T, X @ coef.T + intercept, rtol=1e-12)
    back = design.to_original(theta)
    np.testing.assert_allclose(back[0], coef, rtol=1e-14)
    np.testing.assert_allclose(back[1], intercept, rtol=1e-13)


@pytest.mark.parametrize("formed", [False, True], ids=["centred", "design"])
def test_linear_experts_are_weighted_ridges(rng, formed):
    X = rng.normal(size=(100, 3)) + 10.0
    y = rng.normal(size=100)
    weights = rng.uniform(size=(100, 3))
    weights[:10, 0] = 0.0
    experts = LinearExperts(3, alpha=0.7).fit(X, y, weights, design=_design(X, formed))
    for k in range(3):
        ridge = Ridge(alpha=0.7).fit(X, y, sample_weight=weights[:, k])
        np.testing.assert_allclose(experts.predict(X)[:, k], ridge.predict(X), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("frame", ["centred", "design", "sampled", "unsampled expert"])
@pytest.mark.parametrize("n_classes", [2, 4])
def test_logistic_experts_are_weighted_logistic_regressions(rng, n_classes, frame, monkeypatch):
    # "sampled": the Hessian's products from every fourth row and the
    # bounds from every sixteenth (as on millions of rows), which steer the
    # steps but leave the gradient, hence the solution, exact; with an
    # expert whose rows the samples miss, from all rows
    if "sampled" in frame:
        monkeypatch.setattr(skmoe._design, "CURVATURE_ROWS", 50)
        monkeypatch.setattr(skmoe._design, "BLOCK_ROWS", 12)
    X = rng.normal(size=(200, 3)) * [1.0, 3.0, 0.5] + [0.0, 2.0, -1.0]
    y = rng.randint(n_classes, size=200)
    weights = rng.uniform(size=(200, 2))
    if frame == "unsampled expert":
        weights[::4, 1] = 0.0
    experts = LogisticExperts(2, n_classes, alpha=0.5, tol=1e-10)
    experts.fit(X, y, weights, design=_design(X, frame != "centred"))
    proba = experts.predict_proba(X)
    for k in range(2):
        ref = LogisticRegression(C=2.0, tol=1e-12, max_iter=10_000).fit(
            X, y, sample_weight=weights[:, k]
        )
        targets = weights[:, k, None] * (y[:, None] == np.arange(n_classes))
        expert = experts.to_estimators()[k]
        solution = (X, targets, 0.5, expert.coef_, expert.intercept_)
        assert scaled_gradient(*solution) <= max(1e-10, gradient_floor(*solution))
        bound = sum(
            logistic_proba_bound(X, targets, 0.5, model.coef_, model.intercept_)
            for model in (experts.to_estimators()[k], ref)
        )
        np.testing.assert_allclose(proba[:, k], ref.predict_proba(X), rtol=0, atol=bound)
        np.testing.assert_allclose(experts.to_estimators()[k].predict_proba(X), proba[:, k])


class _RecordingRegressor(Ridge):
    def fit(self, X, y, sample_weight=None):
        self.n_rows_seen_ = len(X)
        return super().fit(X, y, sample_weight=sample_weight)


def test_rows_without_weight_are_not_passed(rng):
    X, y = rng.normal(size=(50, 2)), rng.normal(size=50)
    weights = np.ones((50, 2))
    weights[:20, 1] = 0.0
    experts = EstimatorExperts([_RecordingRegressor()] * 2).fit(X, y, weights, random_state=0)
    assert [est.n_rows_seen_ for est in experts.estimators_] == [50, 30]


@pytest.mark.parametrize("formed", [False, True], ids=["centred", "design"])
def test_linear_expert_without_rows_is_zero_and_silent(rng, formed):
    # under top-k routing an expert can be routed no rows at all
    X, y = rng.standard_normal((50, 3)), rng.standard_normal(50)
    weights = np.column_stack([np.ones(50), np.zeros(50)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        experts = LinearExperts(2).fit(X, y, weights, design=_design(X, formed))
    assert np.all(experts.coef_[1] == 0) and experts.intercept_[1] == 0
    ref = Ridge().fit(X, y)
    np.testing.assert_allclose(experts.coef_[0], ref.coef_, rtol=1e-8)


def test_kmeans_on_a_sample_still_finds_the_regimes(regime_data, monkeypatch):
    X, y, X_test, y_test = regime_data
    params = dict(n_experts=4, random_state=0)
    full = MixtureOfExpertsRegressor(**params).fit(X, y).score(X_test, y_test)
    monkeypatch.setattr(skmoe._em, "KMEANS_ROWS", 300)  # the centres from 300 of the rows
    sampled = MixtureOfExpertsRegressor(**params).fit(X, y).score(X_test, y_test)
    assert sampled > full - 0.01


def test_kmeans_start_runs_on_one_thread(regime_data, monkeypatch):
    # scikit-learn's Lloyd iterations add their threads' partial sums in the
    # order the threads finish: on more threads the start, and so the fit,
    # could change from one run to the next
    from sklearn.cluster import KMeans
    from sklearn.utils._openmp_helpers import _openmp_effective_n_threads
    from threadpoolctl import threadpool_limits

    X, y, _, _ = regime_data
    threads, fit = [], KMeans.fit

    def recording(self, *args, **kwargs):
        threads.append(_openmp_effective_n_threads())  # the threads KMeans takes
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(KMeans, "fit", recording)
    with threadpool_limits(limits=4):
        MixtureOfExpertsRegressor(n_experts=3, random_state=0).fit(X, y)
    assert threads == [1]


@pytest.mark.parametrize(
    "estimator, expected",
    [
        (Ridge(), False),
        (CupyRidge(device="cpu"), False),
        (CupyRidge(device="cuda"), True),
        (MixtureOfExpertsRegressor(), False),
        (MixtureOfExpertsRegressor(device="cuda"), True),
    ],
)
def test_experts_that_take_device_arrays_are_told_apart(estimator, expected):
    # in a GPU fit these are given the device's rows, the others host copies
    assert takes_device_arrays(estimator) is expected


def test_distances_without_kept_outputs_form_them_once(rng):
    # where the E-step took the log-likelihoods straight from the experts, a
    # move's distances form the outputs at its first call, and only then
    from skmoe._likelihood import CategoricalLikelihood
    from skmoe._solvers.em import _distance

    X, y = rng.normal(size=(200, 3)), rng.randint(3, size=200)
    experts = LogisticExperts(3, 3).fit(X, y, rng.uniform(size=(200, 3)))
    calls = []

    class Counting(CategoricalLikelihood):
        def outputs(self, experts, X):
            calls.append(1)
            return super().outputs(experts, X)

    likelihood = Counting(3, 1.0)
    distance = _distance(likelihood, None, None, experts, X)
    assert not calls
    proba = experts.predict_proba(X)
    for a, b in [(0, 1), (1, 2), (0, 2)]:
        np.testing.assert_array_equal(distance(a, b), likelihood.distance(proba, None, a, b))
    assert len(calls) == 1
