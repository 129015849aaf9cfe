"""n_experts="auto": the mixture grows from one expert while a criterion says
each split is real (skmoe._solvers.grow)."""

import numpy as np
import pytest
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from skmoe import MixtureOfExpertsClassifier, MixtureOfExpertsRegressor
from skmoe.datasets import make_regime_classification, make_regime_regression


@pytest.fixture(scope="module")
def three_regimes():
    X, y = make_regime_regression(n_samples=3000, n_features=4, n_regimes=3, random_state=1)
    return X, y


def test_auto_is_the_default():
    assert MixtureOfExpertsRegressor().n_experts == "auto"
    assert MixtureOfExpertsClassifier().n_experts == "auto"


def test_auto_finds_the_regimes(three_regimes):
    # three linear regimes, noise 0.5 on 3000 rows: each split into a real
    # regime gains hundreds of log-likelihood units, far above BIC's
    # log(3000) = 8 a parameter; a fourth expert has nothing to fit
    X, y = three_regimes
    model = MixtureOfExpertsRegressor(random_state=0).fit(X, y)
    assert model.n_experts_ == len(model.estimators_) == 3
    path = model.growth_path_
    assert list(path["n_experts"][path["kept"]]) == [1, 2, 3]
    # past the best size, the growth goes on one size (PATIENCE) and stops
    assert list(path["n_experts"][~path["kept"]]) == [4, 5]


def test_the_sizes_share_the_rows_outer_products(three_regimes, monkeypatch):
    # with 4 features the products pay from one expert on (5 K >= d + 1):
    # formed once, by the first size, for the five sizes and the polish
    from skmoe import _design

    calls = []
    form = _design._upper_outer_products
    monkeypatch.setattr(_design, "_upper_outer_products", lambda Z1: calls.append(1) or form(Z1))
    X, y = three_regimes
    model = MixtureOfExpertsRegressor(random_state=0).fit(X, y)
    assert len(model.growth_path_["n_experts"]) == 5 and len(calls) == 1


def test_no_regimes_gives_the_single_model():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2000, 5))
    y = X @ rng.standard_normal(5) + 0.5 * rng.standard_normal(2000)
    model = MixtureOfExpertsRegressor(random_state=0).fit(X, y)
    assert model.n_experts_ == 1
    single = MixtureOfExpertsRegressor(n_experts=1, random_state=0).fit(X, y)
    np.testing.assert_array_equal(model.predict(X), single.predict(X))


def test_the_path_records_the_bic_of_each_fit(three_regimes):
    # the BIC recorded for the size kept is the fitted model's bic on its
    # training rows (the same sums, in another order: float64 rounding of
    # 3000-term sums)
    X, y = three_regimes
    model = MixtureOfExpertsRegressor(random_state=0).fit(X, y)
    path = model.growth_path_
    kept = path["bic"][path["kept"]]
    assert np.all(np.diff(kept) < 0)  # each split kept lowered BIC
    np.testing.assert_allclose(kept[-1], model.bic(X, y), rtol=1e-9)
    rejected = path["bic"][~path["kept"]]
    assert np.all(rejected >= kept[-1])


def test_wrapped_experts_grow_on_held_out_rows(three_regimes):
    X, y = three_regimes
    model = MixtureOfExpertsRegressor(DecisionTreeRegressor(max_depth=2), random_state=0)
    model.fit(X[:1500], y[:1500])
    path = model.growth_path_
    assert "validation_log_likelihood" in path and "bic" not in path
    kept = path["validation_log_likelihood"][path["kept"]]
    assert np.all(np.diff(kept) > model.tol)
    assert model.n_experts_ == path["n_experts"][path["kept"]][-1] > 1


def test_too_few_rows_to_hold_out_give_one_expert():
    X = np.arange(12, dtype=float).reshape(6, 2)
    y = np.array([0, 1, 0, 1, 0, 1])
    # 6 rows, a tenth held out: fewer rows than classes
    model = MixtureOfExpertsClassifier(DecisionTreeClassifier(max_depth=1), random_state=0)
    assert model.fit(X, y).n_experts_ == 1
    assert model.growth_path_ is None
    with pytest.raises(ValueError, match="test_size"):  # where the user asked for it
        model.set_params(early_stopping=True).fit(X, y)


def test_classifier_grows(three_regimes):
    X, y = make_regime_classification(
        n_samples=4000, n_features=4, n_regimes=3, n_classes=3, random_state=0
    )
    model = MixtureOfExpertsClassifier(random_state=0).fit(X, y)
    assert model.n_experts_ > 1
    assert model.growth_path_["n_experts"][0] == 1


def test_fixed_n_experts_has_no_path(three_regimes):
    X, y = three_regimes
    model = MixtureOfExpertsRegressor(n_experts=2, random_state=0).fit(X, y)
    assert model.growth_path_ is None and model.n_experts_ == 2


def test_a_list_of_estimators_is_one_expert_each(three_regimes):
    X, y = three_regimes
    trees = [DecisionTreeRegressor(max_depth=1), DecisionTreeRegressor(max_depth=2)]
    model = MixtureOfExpertsRegressor(trees, random_state=0).fit(X[:500], y[:500])
    assert model.n_experts_ == 2 and model.growth_path_ is None


def test_given_responsibilities_need_a_fixed_n_experts(three_regimes):
    X, y = three_regimes
    with pytest.raises(ValueError, match="n_experts='auto' grows from one expert"):
        MixtureOfExpertsRegressor(init=np.ones((len(X), 2))).fit(X, y)


def test_partial_fit_grows_in_its_warm_up(three_regimes):
    # one chunk too small to start stepwise EM: batch EM on it, grown as fit
    # grows it
    X, y = three_regimes
    online = MixtureOfExpertsRegressor(random_state=0).partial_fit(X[:400], y[:400])
    batch = MixtureOfExpertsRegressor(random_state=0).fit(X[:400], y[:400])
    assert online.n_experts_ == batch.n_experts_ > 1
    np.testing.assert_allclose(online.predict(X), batch.predict(X), rtol=1e-10)
    assert online.growth_path_ is None
    # later chunks keep the experts found
    online.partial_fit(X[400:1600], y[400:1600]).partial_fit(X[1600:], y[1600:])
    assert online._online.rows is None  # stepwise EM has started
    assert online.n_experts_ >= batch.n_experts_


def test_warm_start_under_auto_continues_the_size_fitted(three_regimes):
    X, y = three_regimes
    model = MixtureOfExpertsRegressor(warm_start=True, random_state=0).fit(X, y)
    n_experts = model.n_experts_
    model.fit(X, y)
    assert model.n_experts_ == n_experts and model.growth_path_ is None
