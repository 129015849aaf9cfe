"""Experts that fail: the error names the expert, expert_failure="drop" goes
on without it, and a failed or interrupted fit leaves the previous state."""

import warnings

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeRegressor

from skmoe import MixtureOfExpertsClassifier, MixtureOfExpertsRegressor


class Failing(RegressorMixin, BaseEstimator):
    """A tree regressor that raises ``error`` from fit, or predicts NaN."""

    def __init__(self, error=None, nan=False):
        self.error = error
        self.nan = nan

    def fit(self, X, y, sample_weight=None):
        if self.error is not None:
            raise self.error
        self.tree_ = DecisionTreeRegressor(max_depth=3, random_state=0)
        self.tree_.fit(X, y, sample_weight=sample_weight)
        return self

    def predict(self, X):
        out = self.tree_.predict(X)
        return np.full_like(out, np.nan) if self.nan else out


class FailingClassifier(ClassifierMixin, BaseEstimator):
    def __init__(self, fail=False):
        self.fail = fail

    def fit(self, X, y, sample_weight=None):
        if self.fail:
            raise ArithmeticError("no fit")
        self.model_ = LogisticRegression().fit(X, y, sample_weight=sample_weight)
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, X):
        return self.model_.predict_proba(X)

    def predict(self, X):
        return self.model_.predict(X)


def experts(bad):
    return [Failing(), Failing(), bad, Failing()]


def test_a_failing_expert_is_named_with_its_weight_mass(regime_data):
    X, y, _, _ = regime_data
    model = MixtureOfExpertsRegressor(experts(Failing(ArithmeticError("boom"))), n_experts=4)
    # the first failed expert's error type, so that callers catching it still do
    message = r"expert 2 \(weight mass [\d.]+\) failed: .*boom"
    with pytest.raises(ArithmeticError, match=message) as info:
        model.fit(X, y)
    assert str(info.value.__cause__) == "boom"
    assert not hasattr(model, "gate_")  # nothing half-fitted


def test_non_finite_outputs_are_reported_with_the_expert(regime_data):
    X, y, _, _ = regime_data
    model = MixtureOfExpertsRegressor(experts(Failing(nan=True)), n_experts=4, random_state=0)
    with pytest.raises(ValueError, match="expert 2 .*NaN or infinity"):
        model.fit(X, y)


@pytest.mark.parametrize("bad", [Failing(ArithmeticError("boom")), Failing(nan=True)])
def test_drop_removes_the_expert_and_renormalises_the_gate(regime_data, bad):
    X, y, X_test, y_test = regime_data
    model = MixtureOfExpertsRegressor(
        experts(bad), n_experts=4, expert_failure="drop", random_state=0
    )
    with pytest.warns(UserWarning, match=r"expert 2 .*Dropped .*3 experts remain"):
        model.fit(X, y)
    assert model.dropped_experts_ == [2]
    assert len(model.estimators_) == 3
    gate = model.gate_proba(X_test)
    assert gate.shape == (len(X_test), 3)
    np.testing.assert_allclose(gate.sum(axis=1), 1.0)
    assert np.all(np.isfinite(model.predict(X_test)))
    assert model.score(X_test, y_test) > 0.5


def test_drop_keeps_track_of_the_original_indices(regime_data):
    X, y, _, _ = regime_data
    bad = Failing(ArithmeticError("boom"))
    model = MixtureOfExpertsRegressor(
        [Failing(), bad, Failing(), bad, Failing()], n_experts=5, expert_failure="drop"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model.fit(X, y)
    assert model.dropped_experts_ == [1, 3]
    assert len(model.estimators_) == 3


def test_drop_of_every_expert_raises(regime_data):
    X, y, _, _ = regime_data
    bad = Failing(ArithmeticError("boom"))
    model = MixtureOfExpertsRegressor([bad, bad], n_experts=2, expert_failure="drop")
    with pytest.raises(ArithmeticError, match="expert 0 .*expert 1"):
        model.fit(X, y)


def test_the_classifier_drops_too(regime_data):
    X, y, _, _ = regime_data
    labels = (y > np.median(y)).astype(int)
    model = MixtureOfExpertsClassifier(
        [FailingClassifier(), FailingClassifier(fail=True), FailingClassifier()],
        n_experts=3,
        expert_failure="drop",
        random_state=0,
    )
    with pytest.warns(UserWarning, match="expert 1"):
        model.fit(X, labels)
    assert model.dropped_experts_ == [1]
    np.testing.assert_allclose(model.predict_proba(X).sum(axis=1), 1.0)


@pytest.mark.parametrize(
    "params", [dict(solver="gradient"), dict(n_experts=(2, 2))], ids=["gradient", "hierarchy"]
)
def test_drop_is_refused_where_the_gate_cannot_be_renormalised(regime_data, params):
    X, y, _, _ = regime_data
    model = MixtureOfExpertsRegressor(expert_failure="drop", **{"n_experts": 2, **params})
    with pytest.raises(ValueError, match="expert_failure='drop' needs solver='em'"):
        model.fit(X, y)


@pytest.mark.parametrize("error", [ArithmeticError("boom"), KeyboardInterrupt()])
def test_a_failed_or_interrupted_fit_leaves_the_previous_state(regime_data, error):
    X, y, X_test, _ = regime_data
    model = MixtureOfExpertsRegressor(n_experts=2, random_state=0).fit(X, y)
    state = dict(model.__dict__)
    expected = model.predict(X_test)
    model.set_params(estimator=[Failing(), Failing(error)])
    with pytest.raises(type(error)):
        model.fit(X[:, :3], y)  # validation has already reset n_features_in_ when it fails
    assert model.n_features_in_ == X.shape[1]
    assert all(model.__dict__[key] is value for key, value in state.items() if key != "estimator")
    np.testing.assert_array_equal(model.predict(X_test), expected)
