"""Invariants of the model and of EM that hold for any data."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.tree import DecisionTreeRegressor

import skmoe._design
import skmoe._em
from skmoe import MixtureOfExpertsClassifier, MixtureOfExpertsRegressor
from skmoe.experts import LinearExperts


def _fit(kind, X, y, **params):
    params.setdefault("random_state", 0)
    model = MixtureOfExpertsRegressor if kind == "reg" else MixtureOfExpertsClassifier
    return model(**params).fit(X, y)


@pytest.fixture(params=["reg", "clf"])
def kind(request):
    return request.param


@pytest.fixture
def fitted(kind, regime_data):
    X, y, X_test, _ = regime_data
    if kind == "clf":
        y = y > np.median(y)
    return kind, _fit(kind, X, y, n_experts=4), X, y, X_test


def _predictions(kind, model, X):
    return model.predict(X) if kind == "reg" else model.predict_proba(X)


def test_gate_rows_sum_to_one(fitted):
    _, model, _, _, X_test = fitted
    gate = model.gate_proba(X_test)
    assert gate.shape == (len(X_test), 4)
    assert np.all(gate >= 0)
    np.testing.assert_allclose(gate.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(model.predict_expert(X_test), gate.argmax(axis=1))


@pytest.mark.parametrize("frame", ["design", "centred", "curvature sample"])
@pytest.mark.parametrize("kind, n_classes", [("reg", None), ("clf", 2), ("clf", 3)])
def test_em_objective_never_falls(regime_data, monkeypatch, kind, n_classes, frame):
    # restarts of dead experts and merge-and-split moves re-initialise experts
    # (the objective may dip there); switch them off to see plain EM. The
    # built-in experts' and the gate's M-steps are a few line-searched Newton
    # steps (a generalised EM): each must lower its own objective, whether
    # the experts solve in the design's coordinates or in centred ones, and
    # whether the gate's steps take their curvature from all rows or a sample
    monkeypatch.setattr(skmoe._em, "REDUNDANT_DISTANCE", 0.0)
    X, y, _, _ = regime_data
    assert skmoe._design._outer_products_pay(X, n_experts=4)
    if frame == "centred":
        monkeypatch.setattr(skmoe._design, "_outer_products_pay", lambda Z, n_experts: False)
    if frame == "curvature sample":
        monkeypatch.setattr(skmoe._design, "CURVATURE_ROWS", len(X) // 4)
        monkeypatch.setattr(skmoe._design, "BLOCK_ROWS", len(X) // 16)
    if kind == "clf":
        y = np.digitize(y, np.quantile(y, np.linspace(0, 1, n_classes + 1)[1:-1]))
    model = _fit(kind, X, y, n_experts=4, tol=1e-6, min_expert_load=0.0)
    bounds = model.lower_bounds_
    assert model.n_expert_restarts_ == 0 and model.n_merges_ == 0
    assert len(bounds) == model.n_iter_ >= 2
    assert np.all(np.diff(bounds) >= -1e-9 * np.abs(bounds[1:]))
    assert model.lower_bound_ == bounds[-1]


def test_rows_do_not_depend_on_the_batch(fitted):
    # BLAS may sum a row's few products in another order for another batch
    # shape: rounding of a d-term sum, far under 1e-12 of the outputs' scale
    kind, model, _, _, X_test = fitted
    full = _predictions(kind, model, X_test)
    atol = 1e-12 * np.abs(full).max()
    for rows in (slice(0, 1), slice(3, 40), np.arange(len(X_test))[::-1]):
        got = _predictions(kind, model, X_test[rows])
        np.testing.assert_allclose(got, full[rows], rtol=1e-12, atol=atol)


def test_fit_is_reproducible_and_seed_dependent(regime_data):
    X, y, X_test, _ = regime_data
    X, y = X[:800], y[:800]
    first = _fit("reg", X, y, n_init=2, init="random", max_iter=5).predict(X_test)
    again = _fit("reg", X, y, n_init=2, init="random", max_iter=5).predict(X_test)
    other = _fit("reg", X, y, n_init=2, init="random", max_iter=5, random_state=1).predict(X_test)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)


@pytest.mark.parametrize("estimator", [None, DecisionTreeRegressor(max_depth=3)])
def test_inputs_are_never_modified(regime_data, estimator):
    X, y, _, _ = regime_data
    X, y = X[:500].copy(), y[:500].copy()
    sample_weight = np.linspace(0.5, 1.5, 500)
    init = np.full((500, 3), 2.0)
    copies = [a.copy() for a in (X, y, sample_weight, init)]
    MixtureOfExpertsRegressor(estimator, n_experts=3, init=init, max_iter=3).fit(
        X, y, sample_weight=sample_weight
    )
    for original, copy in zip((X, y, sample_weight, init), copies, strict=True):
        np.testing.assert_array_equal(original, copy)


def test_no_nan_with_extreme_inputs(rng):
    X = rng.normal(size=(300, 3)) * np.array([1e12, 1e-12, 1.0])
    y = np.where(X[:, 2] > 0, 1e6, -1e6) + rng.normal(size=300)
    reg = _fit("reg", X, y, n_experts=3)
    mean, std = reg.predict(X, return_std=True)
    assert np.all(np.isfinite(mean)) and np.all(np.isfinite(std))
    assert reg.score(X, y) > 0.95


def test_dead_expert_is_restarted_and_counted(regime_data):
    X, y, _, _ = regime_data
    X, y = X[:1000], y[:1000]
    init = np.zeros((1000, 3))
    init[:, :2] = np.eye(2)[np.arange(1000) % 2]  # expert 2 starts with no rows
    reg = _fit("reg", X, y, n_experts=3, init=init)
    assert reg.n_expert_restarts_ >= 1
    assert reg.gate_proba(X).mean(axis=0)[2] > 0.01


def test_restarts_are_bounded_and_experts_kept(regime_data):
    # a load floor above 1 / n_experts cannot be met by every expert: restarts
    # stop after two per expert and run, and no expert is dropped
    X, y, _, _ = regime_data
    reg = _fit("reg", X[:1000], y[:1000], n_experts=4, min_expert_load=0.3)
    assert 1 <= reg.n_expert_restarts_ <= 2 * 4 * (reg.n_merges_ + 1)
    assert len(reg.estimators_) == reg.gate_proba(X[:5]).shape[1] == 4


def test_min_expert_load_zero_restarts_nothing(regime_data):
    X, y, _, _ = regime_data
    init = np.zeros((1000, 3))
    init[:, :2] = np.eye(2)[np.arange(1000) % 2]
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        reg = _fit("reg", X[:1000], y[:1000], n_experts=3, init=init, min_expert_load=0.0)
    assert reg.n_expert_restarts_ == 0


def test_merge_and_split_escapes_a_shared_regime(regime_data, monkeypatch):
    # start two experts on the same half of the data, a third on the rest: EM
    # alone would keep two experts on one side; a merge-and-split move fixes it
    X, y, X_test, y_test = regime_data
    original = LinearExperts.fit

    def check_weights(self, X, y, weights, random_state=None, **design):
        # responsibilities stay a distribution over experts through every move
        np.testing.assert_allclose(weights.sum(axis=1), 1.0)
        return original(self, X, y, weights, random_state, **design)

    monkeypatch.setattr(LinearExperts, "fit", check_weights)
    init = np.zeros((len(X), 4))
    side = X[:, 0] > 0
    init[side, 0] = init[side, 1] = 0.5
    init[~side, 2] = 1.0
    init[:, 3] = 1e-3
    reg = _fit("reg", X, y, n_experts=4, init=init)
    assert reg.n_merges_ >= 1
    assert reg.score(X_test, y_test) > 0.97


def test_classifier_objective_is_mean_log_likelihood_without_penalties():
    X, y = load_iris(return_X_y=True)
    clf = MixtureOfExpertsClassifier(n_experts=2, gate_alpha=0, expert_alpha=1e-12, random_state=0)
    clf.fit(X, y)
    log_lik = np.log(clf.predict_proba(X)[np.arange(150), y])
    assert clf.lower_bound_ == pytest.approx(log_lik.mean(), abs=1e-6)
