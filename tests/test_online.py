"""partial_fit: stepwise online EM over chunks of rows, for both estimators."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeRegressor

from skmoe import MixtureOfExpertsClassifier, MixtureOfExpertsRegressor
from skmoe._online import OnlineLogisticStatistics, OnlineStatistics
from skmoe.datasets import make_regime_classification, make_regime_regression
from skmoe.experts import LinearExperts, LogisticExperts


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
    for k in range(2):
        reference = LogisticRegression(C=1.0, tol=1e-10, max_iter=1000)
        reference.fit(X, y, sample_weight=weights[:, k])
        np.testing.assert_allclose(experts.coef_[k], reference.coef_, rtol=1e-5, atol=1e-6)
        # a softmax's intercepts are defined up to a shared shift
        centred = experts.intercept_[k] - (experts.intercept_[k].mean() if n_classes > 2 else 0)
        expected = reference.intercept_ - (reference.intercept_.mean() if n_classes > 2 else 0)
        np.testing.assert_allclose(centred, expected, rtol=1e-5, atol=1e-6)


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
