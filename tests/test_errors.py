"""Each kind of bad input gets an error that names the problem."""

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.svm import SVC

from skmoe import MixtureOfExpertsClassifier, MixtureOfExpertsRegressor


@pytest.fixture
def data(rng):
    X = rng.normal(size=(40, 3))
    return X, X @ np.array([1.0, -1.0, 0.5]), (X[:, 0] > 0).astype(int)


@pytest.mark.parametrize("model", [MixtureOfExpertsRegressor, MixtureOfExpertsClassifier])
@pytest.mark.parametrize(
    "params, match",
    [
        ({"n_experts": 0}, "n_experts"),
        ({"n_experts": 41}, "n_experts=41 must be <= n_samples=40"),
        ({"gate_alpha": -1.0}, "gate_alpha"),
        ({"max_iter": 0}, "max_iter"),
        ({"init": "spectral"}, "init"),
        ({"init": np.ones((40, 2)), "n_experts": 3}, r"init must have shape .* \(40, 3\)"),
        ({"init": -np.ones((40, 3)), "n_experts": 3}, "non-negative"),
        ({"init": np.zeros((40, 3)), "n_experts": 3}, "positive sum"),
        ({"estimator": [], "n_experts": "auto"}, "empty list"),
        ({"estimator": "tree"}, "estimator"),
    ],
)
def test_bad_parameters(data, model, params, match):
    X, y_reg, y_clf = data
    y = y_reg if model is MixtureOfExpertsRegressor else y_clf
    with pytest.raises((ValueError, TypeError), match=match):
        model(**params).fit(X, y)


def test_list_and_n_experts_must_agree(data):
    X, y, _ = data
    with pytest.raises(ValueError, match="n_experts=3 does not match the 2 estimators"):
        MixtureOfExpertsRegressor([LinearRegression(), LinearRegression()], n_experts=3).fit(X, y)


def test_expert_without_the_needed_method(data):
    X, y, y_clf = data
    with pytest.raises(TypeError, match=r"estimator\[1\] .* has no predict_proba"):
        MixtureOfExpertsClassifier([LogisticRegression(), SVC()]).fit(X, y_clf)
    with pytest.raises(ValueError, match="estimator"):
        MixtureOfExpertsClassifier(SVC()).fit(X, y_clf)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_input_when_experts_refuse_it(data, bad):
    X, y, _ = data
    X = X.copy()
    X[3, 1] = bad
    with pytest.raises(ValueError, match="NaN|infinity"):
        MixtureOfExpertsRegressor().fit(X, y)


def test_wrong_shapes(data):
    X, y, _ = data
    with pytest.raises(ValueError, match="Expected 2D array"):
        MixtureOfExpertsRegressor().fit(X[:, 0], y)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        MixtureOfExpertsRegressor().fit(X, y[:-1])
    reg = MixtureOfExpertsRegressor(n_experts=2, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="expecting 3 features"):
        reg.predict(X[:, :2])


@pytest.mark.parametrize(
    "sample_weight, match",
    [
        (-np.ones(40), "non-negative"),
        (np.zeros(40), "non-zero|not be all zero"),
        (np.ones(39), "shape"),
    ],
)
def test_bad_sample_weight(data, sample_weight, match):
    X, y, _ = data
    with pytest.raises(ValueError, match=match):
        MixtureOfExpertsRegressor().fit(X, y, sample_weight=sample_weight)


def test_single_class(data):
    X, _, _ = data
    with pytest.raises(ValueError, match="at least 2 classes"):
        MixtureOfExpertsClassifier().fit(X, np.zeros(40))


def test_continuous_target_for_the_classifier(data):
    X, y, _ = data
    with pytest.raises(ValueError, match="Unknown label type"):
        MixtureOfExpertsClassifier().fit(X, y)


def test_warm_start_with_other_n_experts(data):
    X, y, _ = data
    reg = MixtureOfExpertsRegressor(n_experts=2, warm_start=True, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="previous fit's 2 experts; got n_experts=3"):
        reg.set_params(n_experts=3).fit(X, y)


def test_warm_start_with_other_classes(data):
    X, _, y = data
    clf = MixtureOfExpertsClassifier(n_experts=2, warm_start=True, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="classes of the previous fit"):
        clf.fit(X, y + 1)


@pytest.mark.parametrize("method", ["predict", "gate_proba", "predict_expert"])
def test_unfitted(data, method):
    X, _, _ = data
    with pytest.raises(NotFittedError):
        getattr(MixtureOfExpertsRegressor(), method)(X)
