import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.neighbors import KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVR
from sklearn.tree import DecisionTreeRegressor

from skmoe import MixtureOfExpertsRegressor


def test_fits_piecewise_linear_regimes(regime_data):
    X, y, X_test, y_test = regime_data
    reg = MixtureOfExpertsRegressor(n_experts=4, random_state=0).fit(X, y)
    ridge = Ridge().fit(X, y)
    assert reg.score(X_test, y_test) > 0.97
    assert reg.score(X_test, y_test) > ridge.score(X_test, y_test) + 0.3
    # noise sd 0.5: the experts find that noise level, on the rows they hold
    share = reg.gate_proba(X).mean(axis=0)
    np.testing.assert_allclose(share @ reg.noise_variance_, 0.25, rtol=0.3)


@pytest.mark.parametrize("estimator", [None, Ridge(alpha=1.0)])
def test_one_expert_is_its_ridge(rng, estimator):
    X = rng.normal(size=(200, 5)) + 3.0
    y = X @ rng.normal(size=5) + rng.normal(size=200)
    sample_weight = rng.uniform(0.5, 2.0, size=200)
    reg = MixtureOfExpertsRegressor(estimator, n_experts=1).fit(X, y, sample_weight=sample_weight)
    ridge = Ridge(alpha=1.0).fit(X, y, sample_weight=sample_weight)
    np.testing.assert_allclose(reg.predict(X), ridge.predict(X), rtol=1e-6, atol=1e-6)


def test_builtin_estimators_carry_the_experts(regime_data):
    X, y, X_test, _ = regime_data
    reg = MixtureOfExpertsRegressor(n_experts=3, random_state=0).fit(X, y)
    means = np.column_stack([est.predict(X_test) for est in reg.estimators_])
    np.testing.assert_allclose(
        reg.predict(X_test), np.einsum("nk,nk->n", reg.gate_proba(X_test), means)
    )


def test_return_std_is_the_mixture_spread(regime_data):
    X, y, X_test, _ = regime_data
    reg = MixtureOfExpertsRegressor(n_experts=4, random_state=0).fit(X, y)
    mean, std = reg.predict(X_test, return_std=True)
    np.testing.assert_array_equal(mean, reg.predict(X_test))
    gate = reg.gate_proba(X_test)
    means = np.column_stack([est.predict(X_test) for est in reg.estimators_])
    second_moment = np.einsum("nk,nk->n", gate, reg.noise_variance_ + means**2)
    np.testing.assert_allclose(std**2, second_moment - mean**2, rtol=1e-6, atol=1e-9)
    assert np.all(std >= np.sqrt(reg.noise_variance_.min()) - 1e-12)


def test_heterogeneous_experts(regime_data):
    X, y, X_test, y_test = regime_data
    experts = [Ridge(), SVR(), DecisionTreeRegressor(max_depth=4)]
    reg = MixtureOfExpertsRegressor(experts, random_state=0, max_iter=10).fit(X, y)
    assert [type(e) for e in reg.estimators_] == [Ridge, SVR, DecisionTreeRegressor]
    assert reg.gate_proba(X_test).shape == (len(X_test), 3)
    assert np.all(np.isfinite(reg.predict(X_test)))


def test_tree_experts_get_their_own_seeds(regime_data):
    X, y, _, _ = regime_data
    tree = DecisionTreeRegressor(max_depth=4, max_features=0.5)
    reg = MixtureOfExpertsRegressor(tree, n_experts=3, random_state=0, max_iter=3).fit(X, y)
    seeds = {est.random_state for est in reg.estimators_}
    assert len(seeds) == 3
    assert tree.random_state is None  # the template is left alone


def test_weighted_bootstrap_for_experts_without_sample_weight(regime_data):
    X, y, X_test, _ = regime_data

    def make(seed):
        knn = KNeighborsRegressor(n_neighbors=10)
        return MixtureOfExpertsRegressor(knn, n_experts=2, random_state=seed, max_iter=3).fit(X, y)

    np.testing.assert_array_equal(make(0).predict(X_test), make(0).predict(X_test))
    assert not np.array_equal(make(0).predict(X_test), make(1).predict(X_test))


def test_sklearn_workflow(regime_data):
    X, y, X_test, _ = regime_data
    pipe = make_pipeline(StandardScaler(), MixtureOfExpertsRegressor(random_state=0))
    search = GridSearchCV(pipe, {"mixtureofexpertsregressor__n_experts": [1, 4]}, cv=KFold(3)).fit(
        X[:1500], y[:1500]
    )
    assert search.best_params_["mixtureofexpertsregressor__n_experts"] == 4
    scores = cross_val_score(clone(pipe), X[:1500], y[:1500], cv=3)
    assert scores.min() > 0.9
    fitted = search.best_estimator_
    loaded = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(loaded.predict(X_test), fitted.predict(X_test))


def test_pandas_feature_names(regime_data):
    pd = pytest.importorskip("pandas")
    X, y, X_test, _ = regime_data
    columns = [f"x{i}" for i in range(X.shape[1])]
    reg = MixtureOfExpertsRegressor(random_state=0).fit(pd.DataFrame(X, columns=columns), y)
    np.testing.assert_array_equal(reg.feature_names_in_, columns)
    # one model, a frame or its array: the same rows (a frame may be laid out
    # in Fortran order, whose products BLAS sums in another order)
    expected = reg.predict(X_test)
    np.testing.assert_allclose(
        reg.predict(pd.DataFrame(X_test, columns=columns)),
        expected,
        rtol=1e-12,
        atol=1e-12 * np.abs(expected).max(),
    )


def test_nan_passes_when_experts_accept_it(regime_data):
    X, y, X_test, _ = regime_data
    X = X.copy()
    X[::7, 0] = np.nan
    reg = MixtureOfExpertsRegressor(
        DecisionTreeRegressor(max_depth=5), n_experts=2, random_state=0, max_iter=5
    ).fit(X, y)
    X_test = X_test.copy()
    X_test[::5, 1] = np.nan
    assert np.all(np.isfinite(reg.predict(X_test)))
    np.testing.assert_allclose(reg.gate_proba(X_test).sum(axis=1), 1.0)


def test_sparse_input_matches_dense(regime_data):
    sp = pytest.importorskip("scipy.sparse")
    X, y, X_test, _ = regime_data
    dense = MixtureOfExpertsRegressor(n_experts=1).fit(X, y)
    sparse = MixtureOfExpertsRegressor(n_experts=1).fit(sp.csr_matrix(X), y)
    np.testing.assert_allclose(
        sparse.predict(sp.csr_matrix(X_test)), dense.predict(X_test), rtol=1e-8
    )


def test_warm_start_continues(regime_data, fixed_em):
    # two warm-started fits of 2 iterations are one fit of 4: the second
    # starts from the first's E-step, which is where the 4-iteration fit
    # takes its third M-step
    X, y, X_test, _ = regime_data
    params = dict(n_experts=4, random_state=0, **fixed_em)
    warm = MixtureOfExpertsRegressor(max_iter=2, warm_start=True, **params)
    first = warm.fit(X, y).lower_bounds_
    second = warm.fit(X, y).lower_bounds_
    straight = MixtureOfExpertsRegressor(max_iter=4, **params).fit(X, y)
    np.testing.assert_allclose(np.concatenate([first, second]), straight.lower_bounds_, rtol=1e-10)
    expected = straight.predict(X_test)
    np.testing.assert_allclose(
        warm.predict(X_test), expected, rtol=1e-10, atol=1e-10 * np.abs(expected).max()
    )


def test_verbose_prints_progress(regime_data, capsys):
    X, y, _, _ = regime_data
    MixtureOfExpertsRegressor(
        n_experts=4, random_state=0, verbose=2, verbose_interval=1, max_iter=3
    ).fit(X, y)
    out = capsys.readouterr().out
    assert "Initialization 0" in out
    assert out.count("Iteration") >= 3 and "log-likelihood" in out


def test_parallel_expert_fits_equal_sequential(regime_data):
    X, y, X_test, _ = regime_data

    def fit(n_jobs):
        tree = DecisionTreeRegressor(max_depth=3)
        model = MixtureOfExpertsRegressor(
            tree, n_experts=3, n_jobs=n_jobs, random_state=0, max_iter=3
        )
        return model.fit(X[:1000], y[:1000])

    np.testing.assert_array_equal(fit(1).predict(X_test), fit(2).predict(X_test))
