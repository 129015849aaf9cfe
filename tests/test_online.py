"""partial_fit: stepwise online EM over chunks of rows, for both estimators."""

import numpy as np
import pytest
import scipy.sparse as sp
from _bounds import gradient_floor, logistic_proba_bound, scaled_gradient
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeRegressor

from skmoe import MixtureOfExpertsClassifier, MixtureOfExpertsRegressor
from skmoe._online import (
    OnlineGate,
    OnlineLogisticStatistics,
    OnlineStatistics,
    significantly_better,
)
from skmoe.datasets import make_regime_classification, make_regime_regression
from skmoe.experts import LinearExperts, LogisticExperts
from skmoe.gates import SoftmaxGate


def _one_pass(model, X, y, n_chunks=20):
    for rows in np.array_split(np.arange(X.shape[0]), n_chunks):
        model.partial_fit(X[rows], y[rows])
    return model


def test_one_pass_in_20_chunks_is_close_to_the_batch_fit():
    # the regime data of the benchmarks: 20,000 rows, chunks of 1,000
    X, y = make_regime_regression(n_samples=25000, random_state=0)
    X, y, X_test, y_test = X[:20000], y[:20000], X[20000:], y[20000:]
    batch = MixtureOfExpertsRegressor(random_state=0).fit(X, y).score(X_test, y_test)
    online = _one_pass(MixtureOfExpertsRegressor(random_state=0), X, y)
    assert online.n_iter_ == 20
    assert online.score(X_test, y_test) > batch - 0.02


@pytest.mark.parametrize("n_features, n_regimes, seed", [(6, 3, 11), (12, 6, 12), (14, 7, 13)])
def test_one_pass_is_within_002_of_the_batch_fit_on_other_regime_data(n_features, n_regimes, seed):
    # shapes and seeds apart from those partial_fit was developed on
    # (benchmarks/online.py: 4, 8, 10, 16 features; 2, 5, 8 regimes; seeds 0-2)
    X, y = make_regime_regression(21000, n_features, n_regimes, random_state=seed)
    X, y, X_test, y_test = X[:16000], y[:16000], X[16000:], y[16000:]
    batch = MixtureOfExpertsRegressor(n_experts=n_regimes, random_state=seed).fit(X, y)
    online = MixtureOfExpertsRegressor(n_experts=n_regimes, random_state=seed)
    online = _one_pass(online, X, y)
    assert online.score(X_test, y_test) > batch.score(X_test, y_test) - 0.02


def test_a_move_leaves_the_local_optimum_of_the_first_chunk():
    # two regimes, each with its own intercept: on the first 800 rows, all the
    # warm-up keeps for 2 experts in 8 features, k-means and EM end with both
    # experts straddling the regimes (R^2 0.76); a move on a later chunk,
    # kept on the chunk after it, separates them
    X, y, regimes = make_regime_regression(21000, 8, 2, random_state=2, return_regimes=True)
    y = y + 2.0 * np.random.RandomState(10_002).standard_normal(2)[regimes]
    X, y, X_test, y_test = X[:16000], y[:16000], X[16000:], y[16000:]
    batch = MixtureOfExpertsRegressor(n_experts=2, random_state=2).fit(X, y)
    online = _one_pass(MixtureOfExpertsRegressor(n_experts=2, random_state=2), X, y)
    assert online.score(X_test, y_test) > batch.score(X_test, y_test) - 0.02


def test_the_first_chunk_is_fitted_as_fit_fits_it(regime_data):
    # too few rows to start stepwise EM: batch EM on them, from k-means
    X, y, X_test, _ = regime_data
    online = MixtureOfExpertsRegressor(random_state=0).partial_fit(X[:500], y[:500])
    batch = MixtureOfExpertsRegressor(random_state=0).fit(X[:500], y[:500])
    np.testing.assert_allclose(online.predict(X_test), batch.predict(X_test), rtol=1e-10)
    assert online.n_iter_ == 1


def test_partial_fit_continues_a_fitted_model(regime_data):
    X, y, X_test, y_test = regime_data
    model = MixtureOfExpertsRegressor(random_state=0).fit(X, y)
    fitted = model.score(X_test, y_test)
    _one_pass(model, X, y, n_chunks=8)
    assert model.score(X_test, y_test) > fitted - 0.01


def test_restarted_experts_forget_their_statistics(regime_data):
    # expert 0, restarted on the second chunk, is solved from that chunk alone
    # (its statistics per unit weight are the chunk's; they count, as all
    # experts' do, for the weight of both chunks against the ridge penalty)
    X, y, _, _ = regime_data
    weights = np.random.default_rng(0).uniform(size=(len(X), 2))
    stats, experts = OnlineStatistics(), LinearExperts(2)
    stats.update(experts, X[:2000], y[:2000], weights[:2000])
    stats.update(experts, X[2000:], y[2000:], weights[2000:])
    stats.update(experts, X[2000:], y[2000:], weights[2000:], again=True, restart=(0,))
    alone = LinearExperts(2, alpha=weights[2000:].sum() / weights.sum())
    alone.fit(X[2000:], y[2000:], weights[2000:])
    np.testing.assert_allclose(experts.coef_[0], alone.coef_[0], rtol=1e-8)
    assert not np.allclose(experts.coef_[1], alone.coef_[1], rtol=1e-3)


def test_online_gate_on_one_chunk_is_the_gates_m_step(regime_data):
    # no chunks before: the objective is the batch M-step's on the chunk
    X, _, _, _ = regime_data
    targets = np.random.default_rng(0).dirichlet(np.ones(3), size=len(X))
    reference = SoftmaxGate(alpha=0.1, max_iter=100, tol=1e-10).fit(X, targets)
    gate = SoftmaxGate(alpha=0.1, max_iter=100, tol=1e-10).init_scaler(X, np.ones(len(X)))
    OnlineGate().update(gate, gate.standardize(X), targets)
    np.testing.assert_allclose(gate.coef_, reference.coef_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(gate.intercept_, reference.intercept_, rtol=1e-6, atol=1e-8)


def test_a_move_is_kept_only_if_significantly_better():
    rng = np.random.default_rng(0)
    old, weight = rng.normal(size=1000), np.ones(1000)
    assert not significantly_better(old + rng.normal(scale=1.0, size=1000), old, weight)
    assert significantly_better(old + 0.2 + rng.normal(scale=0.5, size=1000), old, weight)
    assert not significantly_better(old, old, weight)


def test_online_gate_and_noise_stay_valid(regime_data):
    X, y, X_test, _ = regime_data
    model = _one_pass(MixtureOfExpertsRegressor(n_experts=4, top_k=2, random_state=0), X, y)
    gate = model.gate_proba(X_test)
    np.testing.assert_allclose(gate.sum(axis=1), 1.0)
    assert np.all(np.count_nonzero(gate, axis=1) == 2)
    assert np.all(model.noise_variance_ > 0)


def test_a_chunk_with_other_features_is_refused(regime_data):
    X, y, _, _ = regime_data
    model = MixtureOfExpertsRegressor(random_state=0).partial_fit(X[:500], y[:500])
    with pytest.raises(ValueError, match="features"):
        model.partial_fit(X[500:1000, :3], y[500:1000])


@pytest.mark.parametrize(
    "params",
    [
        dict(estimator=DecisionTreeRegressor()),
        dict(solver="gradient"),
        dict(n_experts=(2, 2)),
    ],
    ids=["wrapped", "gradient", "hierarchy"],
)
def test_partial_fit_needs_the_builtin_experts_and_em(params):
    # as scikit-learn's meta-estimators: the method exists only where it works
    assert not hasattr(MixtureOfExpertsRegressor(**params), "partial_fit")
    assert hasattr(MixtureOfExpertsRegressor(), "partial_fit")


def test_a_first_chunk_smaller_than_the_experts_is_refused(regime_data):
    X, y, _, _ = regime_data
    with pytest.raises(ValueError, match="n_experts=4 must be <= the 3 rows of the first chunk"):
        MixtureOfExpertsRegressor(n_experts=4).partial_fit(X[:3], y[:3])


def test_running_statistics_solve_the_same_experts_for_sparse_input(regime_data):
    # sparse rows are not centred (offset 0), dense ones are: the experts agree
    X, y, X_test, _ = regime_data
    weights = np.random.default_rng(0).uniform(size=(len(X), 3))
    predictions = []
    for rows in (X, sp.csr_matrix(X)):
        stats, experts = OnlineStatistics(), LinearExperts(3)
        for chunk in np.array_split(np.arange(len(X)), 4):
            stats.update(experts, rows[chunk], y[chunk], weights[chunk])
        predictions.append(experts.predict(X_test))
    np.testing.assert_allclose(predictions[1], predictions[0], rtol=1e-8, atol=1e-8)


def test_a_failed_step_leaves_the_model_as_it_was(regime_data):
    X, y, X_test, _ = regime_data
    model = MixtureOfExpertsRegressor(random_state=0).partial_fit(X[:1000], y[:1000])
    expected, n_iter = model.predict(X_test), model.n_iter_
    bad = np.full(1000, np.nan)
    with pytest.raises(ValueError, match="NaN"):
        model.partial_fit(X[1000:2000], bad)
    assert model.n_iter_ == n_iter
    np.testing.assert_array_equal(model.predict(X_test), expected)
    model.partial_fit(X[1000:2000], y[1000:2000])  # and it goes on from there
    assert model.n_iter_ == n_iter + 1


@pytest.mark.parametrize("n_classes", [2, 3])
def test_logistic_expansions_converge_to_the_weighted_logistic_fit(n_classes):
    # one chunk, its expansion refined at each solution: Newton's method on the
    # chunk's penalised log-loss, which LogisticRegression minimises too
    X, y = make_regime_classification(n_samples=600, n_classes=n_classes, random_state=0)
    weights = np.random.default_rng(0).uniform(0.1, 1.0, size=(len(X), 2))
    experts, stats = LogisticExperts(2, n_classes, alpha=1.0), OnlineLogisticStatistics()
    for again in [False] + [True] * 15:
        stats.update(experts, X, y, weights, again=again)
    proba = experts.predict_proba(X)
    for k in range(2):
        reference = LogisticRegression(C=1.0, tol=1e-10, max_iter=1000)
        reference.fit(X, y, sample_weight=weights[:, k])
        targets = weights[:, k, None] * (y[:, None] == np.arange(n_classes))
        expert = experts.to_estimators()[k]
        # Newton's method on the exact expansion: stationary to rounding
        solution = (X, targets, 1.0, expert.coef_, expert.intercept_)
        assert scaled_gradient(*solution) <= gradient_floor(*solution)
        bound = sum(
            logistic_proba_bound(X, targets, 1.0, model.coef_, model.intercept_)
            for model in (expert, reference)
        )
        np.testing.assert_allclose(proba[:, k], reference.predict_proba(X), rtol=0, atol=bound)


def test_classifier_one_pass_beats_one_logistic_model():
    X, y = make_regime_classification(n_samples=12000, n_classes=3, random_state=0)
    X, y, X_test, y_test = X[:10000], y[:10000], X[10000:], y[10000:]
    model = MixtureOfExpertsClassifier(random_state=0)
    for rows in np.array_split(np.arange(len(X)), 20):
        model.partial_fit(X[rows], y[rows], classes=[0, 1, 2])
    single = LogisticRegression().fit(X, y).score(X_test, y_test)
    assert model.n_iter_ == 20
    assert model.score(X_test, y_test) > single + 0.1
    np.testing.assert_allclose(model.predict_proba(X_test).sum(axis=1), 1.0)


def test_classifier_partial_fit_needs_the_classes_first(regime_data):
    X, y, _, _ = regime_data
    labels = (y > 0).astype(int)
    model = MixtureOfExpertsClassifier(random_state=0)
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        model.partial_fit(X[:500], labels[:500])
    model.partial_fit(X[:500], labels[:500], classes=[0, 1])
    with pytest.raises(ValueError, match="labels not seen"):
        model.partial_fit(X[500:1000], labels[500:1000] + 5)
