"""The gate, the expert sets and the log-space helpers against references."""

import numpy as np
import pytest
from scipy.optimize import approx_fprime
from scipy.special import log_softmax, logsumexp
from sklearn.linear_model import LogisticRegression, Ridge

import skmoe.gates._softmax as softmax_module
from skmoe._math import logsumexp_rows, row_max, row_sum, softmax_cross_entropy
from skmoe._optim import sigmoid_cross_entropy
from skmoe.experts import EstimatorExperts, LinearExperts, LogisticExperts
from skmoe.gates import SoftmaxGate


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
    loss, grad = softmax_cross_entropy(logits, targets)
    assert loss == pytest.approx(-np.sum(targets * log_softmax(logits, axis=-1)))
    numeric = approx_fprime(
        logits.ravel(), lambda z: softmax_cross_entropy(z.reshape(shape), targets)[0], 1e-6
    )
    np.testing.assert_allclose(grad.ravel(), numeric, rtol=1e-4, atol=1e-5)


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


def test_gate_newton_and_lbfgs_agree(rng, monkeypatch):
    X, resp = _soft_targets(rng)
    newton = SoftmaxGate(alpha=0.1, tol=1e-10).fit(X, resp)
    monkeypatch.setattr(softmax_module, "_NEWTON_MAX_PARAMS", 0)
    lbfgs = SoftmaxGate(alpha=0.1, tol=1e-10).fit(X, resp)
    np.testing.assert_allclose(newton.predict_proba(X), lbfgs.predict_proba(X), atol=1e-6)


def test_gate_is_stationary_at_its_optimum(rng):
    # at the optimum the soft-target gradient vanishes: Z.T (p - r) + alpha coef = 0
    X, resp = _soft_targets(rng)
    gate = SoftmaxGate(alpha=0.5, tol=1e-12).fit(X, resp)
    Z = gate.standardize(X)
    grad = Z.T @ (gate.predict_proba(X) - resp) + 0.5 * gate.coef_
    np.testing.assert_allclose(grad, 0.0, atol=1e-7)
    np.testing.assert_allclose((gate.predict_proba(X) - resp).sum(axis=0), 0.0, atol=1e-7)


def test_linear_experts_are_weighted_ridges(rng):
    X = rng.normal(size=(100, 3)) + 10.0
    y = rng.normal(size=100)
    weights = rng.uniform(size=(100, 3))
    weights[:10, 0] = 0.0
    experts = LinearExperts(3, alpha=0.7).fit(X, y, weights)
    for k in range(3):
        ridge = Ridge(alpha=0.7).fit(X, y, sample_weight=weights[:, k])
        np.testing.assert_allclose(experts.predict(X)[:, k], ridge.predict(X), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("n_classes", [2, 4])
def test_logistic_experts_are_weighted_logistic_regressions(rng, n_classes):
    X = rng.normal(size=(200, 3))
    y = rng.randint(n_classes, size=200)
    weights = rng.uniform(size=(200, 2))
    experts = LogisticExperts(2, n_classes, alpha=0.5, tol=1e-10).fit(X, y, weights)
    proba = experts.predict_proba(X)
    for k in range(2):
        ref = LogisticRegression(C=2.0, tol=1e-12, max_iter=10_000).fit(
            X, y, sample_weight=weights[:, k]
        )
        np.testing.assert_allclose(proba[:, k], ref.predict_proba(X), atol=1e-6)
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
