"""Faults found by using the estimators as a new user would: each test here
failed before its fix."""

import warnings

import numpy as np
import pytest
from sklearn import config_context
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.datasets import make_regression
from sklearn.linear_model import Ridge, SGDRegressor
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeRegressor

import skmoe._em
from skmoe import MixtureOfExpertsClassifier, MixtureOfExpertsRegressor
from skmoe._solvers.em import EM
from skmoe.exceptions import ExpertFitError


@pytest.fixture
def small(regime_data):
    X, y, X_test, _ = regime_data
    return X[:600], y[:600], X_test[:200]


@pytest.mark.parametrize("model", [MixtureOfExpertsRegressor, MixtureOfExpertsClassifier])
def test_pandas_output_of_transformers_is_not_followed_inside(small, model):
    X, y, X_test = small
    if model is MixtureOfExpertsClassifier:
        y = y > np.median(y)
    predict = "predict" if model is MixtureOfExpertsRegressor else "predict_proba"
    expected = getattr(model(random_state=0).fit(X, y), predict)(X_test)
    with config_context(transform_output="pandas"):
        fitted = model(random_state=0).fit(X, y)
        got = getattr(fitted, predict)(X_test)
        assert isinstance(fitted.gate_proba(X_test), np.ndarray)
    assert isinstance(got, np.ndarray)
    np.testing.assert_array_equal(got, expected)


class _FailsFrom(RegressorMixin, BaseEstimator):
    """A weighted-mean regressor whose fit raises from its ``at``-th call on
    (counted across its clones, in ``calls``)."""

    calls = [0]

    def __init__(self, at=1):
        self.at = at

    def fit(self, X, y, sample_weight=None):
        self.calls[0] += 1
        if self.calls[0] >= self.at:
            raise ValueError("no fit")
        self.mean_ = np.average(y, weights=sample_weight)
        return self

    def predict(self, X):
        return np.full(X.shape[0], self.mean_)


@pytest.mark.parametrize("max_iter, at", [(1, 1), (3, 3), (2, 2)])
def test_a_drop_on_the_last_iteration_ends_in_a_fitted_model(small, max_iter, at):
    X, y, X_test = small
    _FailsFrom.calls[0] = 0
    model = MixtureOfExpertsRegressor(
        [Ridge(), Ridge(), _FailsFrom(at)], expert_failure="drop", max_iter=max_iter
    )
    with pytest.warns(UserWarning, match="expert 2 .*no fit"):
        model.fit(X, y)
    assert model.dropped_experts_ == [2]
    assert len(model.estimators_) == 2
    assert model.gate_proba(X_test).shape == (len(X_test), 2)
    assert np.all(np.isfinite(model.predict(X_test)))


def _two_experts_on_one_regime(X):
    """Initial responsibilities with experts 0 and 1 on one side of x_0, 2 on
    the other and 3 idle: EM makes a merge-and-split move from there."""
    init = np.zeros((len(X), 4))
    side = X[:, 0] > 0
    init[side, 0] = init[side, 1] = 0.5
    init[~side, 2] = 1.0
    init[:, 3] = 1e-3
    return init


def test_a_drop_in_a_rejected_move_ends_without_the_expert(regime_data, monkeypatch):
    # every move's trial made to look worse than its run, so only the drop in
    # it can keep it: the expert fails there, on its first fit in the trial
    X, y, _, _ = regime_data
    init = _two_experts_on_one_regime(X)
    em_run = EM.run
    fails_at = 10**9

    def worse_trials(self, *args, row_log_lik=None, **kwargs):
        if row_log_lik is not None:  # a move's trial
            _FailsFrom.calls[0] = fails_at
        run = em_run(self, *args, row_log_lik=row_log_lik, **kwargs)
        if row_log_lik is not None:
            run.lower_bound -= 1.0
        return run

    monkeypatch.setattr(EM, "run", worse_trials)
    _FailsFrom.calls[0] = 0
    experts = [Ridge(), Ridge(), Ridge(), _FailsFrom(fails_at)]
    model = MixtureOfExpertsRegressor(experts, init=init, expert_failure="drop", random_state=0)
    with pytest.warns(UserWarning, match="expert 3 .*no fit"):
        model.fit(X, y)
    assert model.dropped_experts_ == [3] and len(model.estimators_) == 3
    assert model.gate_proba(X[:5]).shape == (5, 3)


def test_a_failing_predict_is_dropped_or_named(small):
    # 16 experts, one each per row: some are routed fewer rows than neighbours
    X, y, X_test = small
    params = dict(n_experts=16, top_k=1, random_state=0)
    knn = KNeighborsRegressor(n_neighbors=40)  # over some experts' rows, under others'
    with pytest.raises(ValueError, match=r"expert \d+ failed: .*n_neighbors"):
        MixtureOfExpertsRegressor(knn, **params).fit(X, y)
    with pytest.warns(UserWarning, match="Dropped"):
        model = MixtureOfExpertsRegressor(knn, expert_failure="drop", **params).fit(X, y)
    assert model.dropped_experts_ and len(model.estimators_) == 16 - len(model.dropped_experts_)
    assert np.all(np.isfinite(model.predict(X_test)))


def test_a_failing_predict_after_fit_names_the_expert(small):
    X, y, X_test = small
    model = MixtureOfExpertsRegressor([Ridge(), Ridge()], random_state=0).fit(X, y)
    model.estimators_[1].coef_ = model.estimators_[1].coef_[:2]  # breaks its predict
    model._experts.estimators_[1] = model.estimators_[1]
    with pytest.raises(ExpertFitError, match="expert 1 failed"):
        model.predict(X_test)


def test_partial_fit_builds_the_gate_fit_builds(small):
    X, y, _ = small
    params = dict(n_experts=4, top_k=2, balance_loss="switch", balance_coef=0.05, random_state=0)
    fitted = MixtureOfExpertsRegressor(**params).fit(X, y).gate_
    online = MixtureOfExpertsRegressor(**params).partial_fit(X, y).gate_
    for name in ("top_k", "balance_loss", "balance_coef"):
        assert getattr(online, name) == getattr(fitted, name) == params[name]


def test_warnings_point_at_the_users_call(small):
    X, y, _ = small
    _FailsFrom.calls[0] = 0
    model = MixtureOfExpertsRegressor(
        [Ridge(), _FailsFrom(2), KNeighborsRegressor()], expert_failure="drop", max_iter=2
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(X, y)
    assert len(caught) == 3  # resampled expert, drop, no convergence
    assert {w.filename for w in caught} == {__file__}


def test_verbose_reports_moves_and_counts_iterations_once(regime_data, capsys):
    # two experts start on one regime: a merge-and-split move runs
    X, y, _, _ = regime_data
    init = _two_experts_on_one_regime(X)
    model = MixtureOfExpertsRegressor(n_experts=4, init=init, verbose=1, random_state=0)
    model.fit(X, y)
    out = capsys.readouterr().out
    assert model.n_merges_ >= 1
    assert out.count("Move at iteration") >= out.count("Move kept") == model.n_merges_
    assert "Initialization converged. time lapse" in out
    model.set_params(verbose=2, verbose_interval=1).fit(X, y)
    counts = [
        int(line.split()[1])
        for line in capsys.readouterr().out.splitlines()
        if line.strip().startswith("Iteration")
    ]
    assert counts == list(range(1, len(counts) + 1)) and len(counts) >= model.n_iter_


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("max_depth", [2, 5])
def test_falls_of_the_objective_are_counted(regime_data, monkeypatch, max_depth):
    X, y, _, _ = regime_data
    monkeypatch.setattr(skmoe._em, "REDUNDANT_DISTANCE", 0.0)  # no moves
    params = dict(n_experts=4, min_expert_load=0.0, random_state=0, max_iter=40)
    tree = DecisionTreeRegressor(max_depth=max_depth)
    trees = MixtureOfExpertsRegressor(tree, n_iter_no_change=5, **params).fit(X, y)
    bounds = trees.lower_bounds_
    assert trees.n_objective_falls_ == np.sum(np.diff(bounds) < -1e-9 * np.abs(bounds[:-1]))
    # converged once its best objective has not risen by tol for 5 iterations
    best, stale = -np.inf, 0
    for bound in bounds:
        best, stale = (bound, 0) if bound > best + trees.tol else (best, stale + 1)
    assert trees.converged_ == (stale >= 5)
    assert MixtureOfExpertsRegressor(**params).fit(X, y).n_objective_falls_ == 0


def test_ordinary_fits_do_not_warn_of_restarts():
    X, y = make_regression(2000, 20, noise=1.0, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        cross_val_score(MixtureOfExpertsRegressor(random_state=0), X, y, cv=3)
        MixtureOfExpertsRegressor(n_experts=(4, 4), random_state=0).fit(X, y)


def test_a_pipeline_expert_gets_the_weights():
    X, y = make_regression(300, 3, noise=1.0, random_state=0)
    expert = make_pipeline(StandardScaler(), Ridge())
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # not resampled
        model = MixtureOfExpertsRegressor(expert, n_experts=2, random_state=0).fit(X, y)
    assert model.score(X, y) > 0.99


def test_resampled_experts_are_named_once_per_fit(small):
    X, y, _ = small
    model = MixtureOfExpertsRegressor(KNeighborsRegressor(), n_init=2, max_iter=3)
    with pytest.warns(UserWarning, match="of KNeighborsRegressor takes no sample_weight") as caught:
        model.fit(X, y)
    assert sum("sample_weight" in str(w.message) for w in caught) == 1


def test_partial_fit_says_what_it_supports():
    model = MixtureOfExpertsRegressor(SGDRegressor())
    assert not hasattr(model, "partial_fit")
    with pytest.raises(AttributeError) as error:
        model.partial_fit(np.ones((4, 2)), np.ones(4))
    assert "built-in experts (estimator=None)" in str(error.value.__cause__)
