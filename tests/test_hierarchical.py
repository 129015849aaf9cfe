"""Hierarchical mixtures: a tree of gates, n_experts given as a tuple."""

import numpy as np
import pytest
from sklearn.linear_model import Ridge

import skmoe._em
from skmoe import MixtureOfExpertsClassifier, MixtureOfExpertsRegressor
from skmoe._em import idle_expert
from skmoe.gates import HierarchicalGate


@pytest.mark.parametrize("kind", ["reg", "clf"])
def test_depth_one_equals_the_flat_mixture(regime_data, kind, fixed_em):
    X, y, X_test, _ = regime_data
    Estimator = MixtureOfExpertsRegressor
    if kind == "clf":
        Estimator, y = MixtureOfExpertsClassifier, y > np.median(y)
    params = dict(random_state=0, max_iter=30, **fixed_em)
    flat = Estimator(n_experts=4, **params).fit(X, y)
    tree = Estimator(n_experts=(4,), **params).fit(X, y)
    assert isinstance(tree.gate_, HierarchicalGate)
    # the same arithmetic up to rounding (leaf logits are log-softmaxed once more)
    np.testing.assert_allclose(tree.lower_bounds_, flat.lower_bounds_, rtol=1e-8)
    np.testing.assert_allclose(tree.gate_proba(X_test), flat.gate_proba(X_test), atol=1e-10)
    predict = "predict" if kind == "reg" else "predict_proba"
    np.testing.assert_allclose(
        getattr(tree, predict)(X_test), getattr(flat, predict)(X_test), rtol=1e-9, atol=1e-10
    )
    assert tree.bic(X, y) == pytest.approx(flat.bic(X, y), rel=1e-10)


def test_leaf_probability_is_the_product_along_its_path(regime_data):
    X, y, X_test, _ = regime_data
    model = MixtureOfExpertsRegressor(n_experts=(2, 3), random_state=0).fit(X, y)
    gate = model.gate_proba(X_test)
    assert gate.shape == (len(X_test), 6) and len(model.estimators_) == 6
    np.testing.assert_allclose(gate.sum(axis=1), 1.0, rtol=1e-12)
    (root,), branches = model.gate_.gates_
    assert len(branches) == 2
    Z = model.gate_.standardize(X_test)
    root_proba = np.exp(root.log_proba_standardized(Z))
    expected = np.hstack(
        [root_proba[:, [a]] * np.exp(branches[a].log_proba_standardized(Z)) for a in (0, 1)]
    )
    np.testing.assert_allclose(gate, expected, rtol=1e-10, atol=1e-14)


def test_top_k_applies_to_the_leaves(regime_data):
    X, y, X_test, _ = regime_data
    model = MixtureOfExpertsRegressor(n_experts=(2, 2), top_k=2, random_state=0).fit(X, y)
    assert np.all(np.count_nonzero(model.gate_proba(X_test), axis=1) == 2)


def test_em_with_a_hierarchy_never_falls(regime_data, monkeypatch):
    # no moves: they restart experts, where the objective may dip
    monkeypatch.setattr(skmoe._em, "REDUNDANT_DISTANCE", 0.0)
    monkeypatch.setattr(skmoe._em, "IDLE_LOAD", 0.0)
    X, y, _, _ = regime_data
    model = MixtureOfExpertsRegressor(
        n_experts=(2, 2), tol=1e-6, min_expert_load=0.0, random_state=0
    ).fit(X, y)
    bounds = model.lower_bounds_
    assert len(bounds) >= 2
    assert np.all(np.diff(bounds) >= -1e-9 * np.abs(bounds[1:]))


def test_parameter_count_sums_the_node_gates(regime_data):
    X, y, _, _ = regime_data
    X, y = X[:500], y[:500]
    model = MixtureOfExpertsRegressor(n_experts=(2, 2), random_state=0).fit(X, y)
    d = X.shape[1]
    n_params = 3 * (2 - 1) * (d + 1) + 4 * (d + 2)  # three binary gates; four experts
    log_lik = model._row_log_likelihood(X, y).sum()
    assert model.aic(X, y) == pytest.approx(-2 * log_lik + 2 * n_params)


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(n_experts=()), "positive integers"),
        (dict(n_experts=(2, 0)), "positive integers"),
        (dict(n_experts=(2, 2.5)), "positive integers"),
        (dict(n_experts=(2, 2), solver="gradient"), "trained by EM only"),
        (dict(n_experts=(2, 2), estimator=[Ridge()] * 3), "does not match the 3 estimators"),
    ],
)
def test_bad_hierarchies_are_refused(params, match):
    X, y = np.random.RandomState(0).standard_normal((2, 50, 2))
    with pytest.raises(ValueError, match=match):
        MixtureOfExpertsRegressor(**params).fit(X, y[:, 0])


def test_idle_expert_is_the_least_loaded_under_a_quarter_of_its_branch():
    # loads 0.4, 0.55, 0.05 | 0.3, 0.3, 0.4: branch means 1/3 each
    resp = np.array([[0.4, 0.55, 0.05, 0.3, 0.3, 0.4]])
    groups = [np.arange(3), np.arange(3, 6)]
    assert idle_expert(resp, np.ones(1), groups, exclude=set()) == 2
    assert idle_expert(resp, np.ones(1), groups, exclude={2}) is None
