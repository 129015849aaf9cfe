"""Penalties moved at every M-step by MacKay's fixed point for the Laplace
approximation of the evidence: gate_alpha="auto", and the classifier's
expert_alpha="auto"."""

import numpy as np
import pytest

from skmoe import MixtureOfExpertsClassifier, MixtureOfExpertsRegressor
from skmoe._design import Design
from skmoe._optim import RELATIVE_ALPHA_RANGE, evidence_alpha
from skmoe.datasets import make_regime_classification, make_regime_regression
from skmoe.experts._logistic import LogisticExperts
from skmoe.gates import HierarchicalGate, SoftmaxGate
from skmoe.gates._softmax import _AUTO_RTOL


def _blocks(rng, n_experts, n_features):
    """Positive definite Gram matrices of features of unequal scales."""
    rows = rng.standard_normal((n_experts, 40, n_features + 1))
    rows *= np.append(np.arange(1, n_features + 1), 1.0)
    return rows.transpose(0, 2, 1) @ rows


_PLAIN = (np.append(np.ones(5), 0.0), 0.0)  # the intercept is not penalised
# unequal scales, and a coordinate whose penalty alpha does not move
_SCALED = (np.array([1.0, 4.0, 0.25, 0.0, 2.0, 0.0]), np.array([0, 0, 0, 1.0, 0, 0]))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("pattern, fixed", [_PLAIN, _SCALED])
def test_evidence_step_is_the_determined_coefficients_over_the_norm(seed, pattern, fixed):
    rng = np.random.RandomState(seed)
    grams, theta, alpha = _blocks(rng, 3, 5), rng.standard_normal((6, 3)), 0.7
    matrices = [g + np.diag(alpha * pattern + fixed) for g in grams]
    n_penalised = np.count_nonzero(pattern)
    gamma = sum(
        n_penalised - alpha * np.trace(np.linalg.solve(m, np.diag(pattern))) for m in matrices
    )
    # the factorisation is damped by 1e-10 of the mean eigenvalue, which
    # moves each trace by at most that times the block's condition number
    cond = max(np.linalg.cond(m) for m in matrices)
    expected = gamma / (pattern[:, None] * theta**2).sum()
    step = evidence_alpha(grams, theta, alpha, pattern, fixed)
    assert step == pytest.approx(expected, rel=4e-10 * cond)


def test_evidence_step_keeps_a_zero_gate_and_bounds_the_penalty():
    rng = np.random.RandomState(0)
    grams, pattern = _blocks(rng, 2, 4), np.append(np.ones(4), 0.0)
    assert evidence_alpha(grams, np.zeros((5, 2)), 0.3, pattern) == 0.3
    assert evidence_alpha(0 * grams, np.ones((5, 2)), 0.3, pattern) == 0.3  # no rows
    curvature = np.mean([np.trace(g[:4, :4]) for g in grams]) / 4
    # coefficients the rows do not support: the largest penalty
    tiny = np.full((5, 2), 1e-12)
    largest = curvature * RELATIVE_ALPHA_RANGE[1]
    assert evidence_alpha(grams, tiny, 1.0, pattern) == pytest.approx(largest)
    # a penalty far under the curvature determines every coefficient: gamma = K d
    huge = np.full((5, 2), 1e6)
    smallest = curvature * RELATIVE_ALPHA_RANGE[0]
    assert evidence_alpha(grams, huge, 1e-9, pattern) == pytest.approx(smallest)


def _gate_rows(seed=0):
    rng = np.random.RandomState(seed)
    X = rng.standard_normal((3000, 3))
    logits = np.column_stack([np.zeros(3000), 2 * X[:, 0], -1.5 * X[:, 1] + 1, X[:, 2] - 1])
    resp = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return X, resp


def test_gate_fit_settles_at_the_fixed_point():
    X, resp = _gate_rows()
    gate = SoftmaxGate(alpha="auto").fit(X, resp)
    Z1 = np.hstack([gate.standardize(X), np.ones((len(X), 1))])
    proba = gate.predict_proba(X)
    grams = np.array([Z1.T @ (Z1 * (p * (1 - p))[:, None]) for p in proba.T])
    # fit stops once a fit moves the penalty by under _AUTO_RTOL; one more
    # step of the contracting iteration moves it less
    theta, pattern = np.vstack([gate.coef_, gate.intercept_]), np.append(np.ones(3), 0.0)
    assert evidence_alpha(grams, theta, gate.alpha_, pattern) == pytest.approx(
        gate.alpha_, rel=_AUTO_RTOL
    )
    assert gate.alpha_ != 0.01


@pytest.mark.parametrize("gate", [SoftmaxGate(alpha="auto"), HierarchicalGate(alpha="auto")])
def test_gate_fit_iterates_until_the_penalties_settle(gate):
    X, resp = _gate_rows()
    before = gate.fit(X, resp)._chosen_alphas()
    assert np.all(before != 0.01)
    gate.fit_standardized(gate.standardize(X), resp)
    np.testing.assert_allclose(gate._chosen_alphas(), before, rtol=_AUTO_RTOL)


def test_gate_penalty_follows_the_evidence():
    rng = np.random.RandomState(0)
    X = rng.standard_normal((2000, 3))
    separable = np.eye(2)[(X[:, 0] > 0).astype(int)]
    unrelated = rng.dirichlet(np.ones(3) * 50, size=2000)  # targets X says nothing of
    sharp = SoftmaxGate(alpha="auto").fit(X, separable)
    flat = SoftmaxGate(alpha="auto").fit(X, unrelated)
    assert sharp.alpha_ < 1e-3 * flat.alpha_
    assert np.abs(sharp.coef_[0]).max() > 10  # a sharp boundary on the first feature
    assert np.abs(flat.coef_).max() < 1e-3  # the gate ignores the features


def _objective(model, X, y, expert_penalty):
    log_lik = model.log_likelihood_samples(X, y).sum()
    return (log_lik - expert_penalty - model.gate_.penalty()) / len(y)


def test_the_objective_holds_the_chosen_gate_penalty():
    X, y = make_regime_regression(n_samples=3000, n_features=4, n_regimes=3, random_state=0)
    model = MixtureOfExpertsRegressor(n_experts=3, gate_alpha="auto", random_state=0).fit(X, y)
    assert model.gate_.alpha_ != 0.01
    gate_penalty = 0.5 * model.gate_.alpha_ * (model.gate_.coef_**2).sum()
    assert model.gate_.penalty() == pytest.approx(gate_penalty, rel=1e-12)
    norms = np.array([(e.coef_**2).sum() for e in model.estimators_])
    expert_penalty = 0.5 * (model.expert_alpha * norms / model.noise_variance_).sum()
    assert model.lower_bound_ == pytest.approx(_objective(model, X, y, expert_penalty), rel=1e-9)


def test_classifier_and_hierarchy_choose_gate_penalties():
    X, y = make_regime_classification(n_samples=2000, n_features=4, n_regimes=3, random_state=0)
    clf = MixtureOfExpertsClassifier(n_experts=3, gate_alpha="auto", random_state=0).fit(X, y)
    expert_penalty = 0.5 * clf.expert_alpha * sum((e.coef_**2).sum() for e in clf.estimators_)
    assert clf.lower_bound_ == pytest.approx(_objective(clf, X, y, expert_penalty), rel=1e-9)
    assert clf.gate_.alpha_ != 0.01
    tree = MixtureOfExpertsClassifier(n_experts=(2, 2), gate_alpha="auto", random_state=0)
    alphas = [g.alpha_ for level in tree.fit(X, y).gate_.gates_ for g in level]
    assert len(alphas) == 3 and all(a > 0 and a != 0.01 for a in alphas)


def test_partial_fit_keeps_the_chosen_penalty():
    X, y = make_regime_regression(n_samples=2000, n_features=4, n_regimes=2, random_state=0)
    model = MixtureOfExpertsRegressor(n_experts=2, gate_alpha="auto", random_state=0)
    model.partial_fit(X[:1000], y[:1000])
    chosen = model.gate_.alpha_
    model.partial_fit(X[1000:], y[1000:])
    assert model.gate_.alpha_ == chosen != 0.01
    assert np.isfinite(model.predict(X)).all()


def test_auto_gate_penalty_needs_em():
    X, y = make_regime_regression(n_samples=200, n_features=3, random_state=0)
    with pytest.raises(ValueError, match="gate_alpha='auto'.*solver='gradient'"):
        MixtureOfExpertsRegressor(gate_alpha="auto", solver="gradient").fit(X, y)


def _evidence_in_original_coordinates(X, weights, coef, intercept, alpha):
    """Each expert's evidence step computed from X's own coordinates: the
    class blocks of its log-loss's Hessian at ``coef``, ``intercept``
    (shapes (K, m, d), (K, m)), with explicit inverses; the step does not
    depend on the coordinates the experts solve in."""
    X1 = np.hstack([X, np.ones((len(X), 1))])
    theta = np.concatenate([coef, intercept[..., None]], axis=2)  # (K, m, d + 1)
    logits = np.einsum("nj,kcj->nkc", X1, theta)
    if theta.shape[1] == 1:
        proba = 1 / (1 + np.exp(-logits))
    else:
        proba = np.exp(logits - logits.max(axis=2, keepdims=True))
        proba /= proba.sum(axis=2, keepdims=True)
    d = X.shape[1]
    pattern = np.append(np.ones(d), 0.0)
    steps, conds = [], []
    for k, a in enumerate(alpha):
        blocks = [X1.T @ (X1 * (weights[:, k] * p * (1 - p))[:, None]) for p in proba[:, k].T]
        matrices = [g + np.diag(a * pattern) for g in blocks]
        conds += [np.linalg.cond(m) for m in matrices]
        gamma = sum(d - a * np.trace(np.linalg.inv(m)[:d, :d]) for m in matrices)
        steps.append(gamma / (coef[k] ** 2).sum())
    return np.array(steps), max(conds)


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("solves_in", ["centred rows", "the design"])
def test_logistic_experts_take_the_evidence_step(n_classes, solves_in):
    rng = np.random.RandomState(n_classes)
    X = rng.standard_normal((400, 3)) * [1.0, 2.0, 0.5] + [0.0, 1.0, -1.0]
    y = rng.randint(n_classes, size=400)
    y[X[:, 0] > 0.5] = 0  # some signal for the coefficients
    weights = rng.uniform(0.1, 1.0, size=(400, 2))
    design = None
    if solves_in == "the design":
        gate = SoftmaxGate().init_scaler(X, np.ones(400))
        design = Design(gate.standardize(X), gate.scaler_, n_experts=20)
        assert design.solves_experts
    experts = LogisticExperts(2, n_classes, alpha="auto", max_iter=20)
    experts.fit(X, y, weights, design=design)
    start = (experts.coef_.astype(float), experts.intercept_.astype(float), experts.alpha_)
    experts.fit(X, y, weights, design=design)
    expected, cond = _evidence_in_original_coordinates(X, weights, *start)
    # the factorisation's damping (1e-10 of the mean eigenvalue) bounds the
    # difference, times the blocks' condition number
    np.testing.assert_allclose(experts.alpha_, expected, rtol=4e-10 * cond)
    assert len(np.unique(experts.alpha_)) == 2


def test_classifier_experts_choose_their_penalties():
    X, y = make_regime_classification(n_samples=2000, n_features=4, n_regimes=3, random_state=0)
    clf = MixtureOfExpertsClassifier(n_experts=3, expert_alpha="auto", random_state=0).fit(X, y)
    alphas = np.array([1 / e.C for e in clf.estimators_])
    assert len(np.unique(alphas)) == 3
    norms = np.array([(e.coef_**2).sum() for e in clf.estimators_])
    assert clf.lower_bound_ == pytest.approx(_objective(clf, X, y, 0.5 * alphas @ norms), rel=1e-9)
    online = MixtureOfExpertsClassifier(n_experts=2, expert_alpha="auto", random_state=0)
    for chunk in np.array_split(np.arange(2000), 4):
        online.partial_fit(X[chunk], y[chunk], classes=np.unique(y))
    assert all(1 / e.C != 1.0 for e in online.estimators_)
