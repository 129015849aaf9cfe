"""Sparse top-k routing."""

import numpy as np
import pytest
from sklearn.tree import DecisionTreeRegressor

from skmoe import MixtureOfExpertsClassifier, MixtureOfExpertsRegressor
from skmoe.experts import EstimatorExperts
from skmoe.gates import SoftmaxGate


@pytest.mark.parametrize("top_k", [1, 2, 3])
def test_gate_keeps_exactly_k_per_row(rng, top_k):
    X = rng.normal(size=(300, 3))
    resp = rng.dirichlet(np.ones(4), size=300)
    gate = SoftmaxGate(top_k=top_k).fit(X, resp)
    proba = gate.predict_proba(X)
    np.testing.assert_array_equal(np.count_nonzero(proba, axis=1), top_k)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    dense = SoftmaxGate(top_k=None).fit(X, resp).predict_proba(X)
    # the kept experts are the k most probable ones, renormalised
    top = np.argsort(-dense, axis=1, kind="stable")[:, :top_k]
    kept = np.take_along_axis(dense, top, axis=1)
    np.testing.assert_allclose(
        np.take_along_axis(proba, top, axis=1), kept / kept.sum(axis=1, keepdims=True)
    )


def test_ties_still_keep_exactly_k(rng):
    # constant input: every row's logits tie; still k non-zeros per row
    X = np.ones((20, 2))
    gate = SoftmaxGate(top_k=2).fit(X, np.full((20, 5), 0.2))
    np.testing.assert_array_equal(np.count_nonzero(gate.predict_proba(X), axis=1), 2)


@pytest.mark.parametrize("model", [MixtureOfExpertsRegressor, MixtureOfExpertsClassifier])
def test_mixture_predictions_use_the_sparse_gate(regime_data, model):
    X, y, X_test, _ = regime_data
    if model is MixtureOfExpertsClassifier:
        y = y > np.median(y)
    est = model(n_experts=4, top_k=2, random_state=0).fit(X, y)
    gate = est.gate_proba(X_test)
    np.testing.assert_array_equal(np.count_nonzero(gate, axis=1), 2)
    np.testing.assert_array_equal(est.predict_expert(X_test), gate.argmax(axis=1))
    np.testing.assert_allclose(est.expert_load_.sum(), 1.0)
    np.testing.assert_allclose(est.expert_importance_.sum(), 1.0)
    # prediction is deterministic and row-wise
    first = est.predict(X_test)
    atol = 1e-12 * np.abs(first).max()  # as test_rows_do_not_depend_on_the_batch
    np.testing.assert_allclose(est.predict(X_test[::-1])[::-1], first, rtol=1e-12, atol=atol)


@pytest.mark.parametrize("model", [MixtureOfExpertsRegressor, MixtureOfExpertsClassifier])
@pytest.mark.parametrize("n_experts, top_k", [(3, 3), (3, 5), (1, 2)])
def test_top_k_of_n_experts_or_more_is_the_dense_mixture(regime_data, model, n_experts, top_k):
    # so that a grid over n_experts and top_k scores every cell
    X, y, X_test, _ = regime_data
    if model is MixtureOfExpertsClassifier:
        y = y > np.median(y)
    dense = model(n_experts=n_experts, random_state=0).fit(X, y)
    full = model(n_experts=n_experts, top_k=top_k, random_state=0).fit(X, y)
    predict = "predict" if model is MixtureOfExpertsRegressor else "predict_proba"
    np.testing.assert_array_equal(getattr(full, predict)(X_test), getattr(dense, predict)(X_test))


@pytest.mark.parametrize("top_k", [1, 2])
def test_sparse_routing_fits_regimes(regime_data, top_k):
    X, y, X_test, y_test = regime_data
    reg = MixtureOfExpertsRegressor(n_experts=4, top_k=top_k, random_state=0).fit(X, y)
    assert reg.score(X_test, y_test) > 0.97


class _CountingTree(DecisionTreeRegressor):
    def fit(self, X, y, sample_weight=None):
        self.n_rows_seen_ = len(X)
        return super().fit(X, y, sample_weight=sample_weight)


def test_experts_see_only_their_routed_rows(regime_data, monkeypatch):
    X, y, _, _ = regime_data
    seen = []
    original = EstimatorExperts.fit

    def spy(self, X, y, weights, random_state=None):
        # every row is routed to exactly top_k experts
        assert np.all(np.count_nonzero(weights, axis=1) <= 2)
        result = original(self, X, y, weights, random_state)
        seen.append(sum(est.n_rows_seen_ for est in result.estimators_))
        return result

    monkeypatch.setattr(EstimatorExperts, "fit", spy)
    MixtureOfExpertsRegressor(
        _CountingTree(max_depth=3), n_experts=8, top_k=2, random_state=0, max_iter=5
    ).fit(X, y)
    # after the first M-step (from the one-hot k-means start) each row is
    # passed to at most two of the eight experts
    assert max(seen[1:]) <= 2 * len(X)
