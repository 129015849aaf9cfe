"""partial_fit: stepwise online EM over chunks of rows."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.tree import DecisionTreeRegressor

from skmoe import MixtureOfExpertsRegressor
from skmoe._online import OnlineStatistics
from skmoe.datasets import make_regime_regression
from skmoe.experts import LinearExperts


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
        stats = OnlineStatistics()
        for chunk in np.array_split(np.arange(len(X)), 4):
            stats.update(rows[chunk], y[chunk], weights[chunk])
        experts = LinearExperts(3).solve(
            stats.offset, stats.gram * stats.weight, stats.rhs * stats.weight
        )
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
