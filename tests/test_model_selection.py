"""Information criteria for choosing the number of experts."""

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from skmoe import MixtureOfExpertsClassifier, MixtureOfExpertsRegressor


def test_bic_prefers_the_true_number_of_regimes(regime_data):
    X, y, _, _ = regime_data
    bic = {
        k: MixtureOfExpertsRegressor(n_experts=k, random_state=0).fit(X, y).bic(X, y)
        for k in (1, 2, 4, 8)
    }
    assert min(bic, key=bic.get) == 4


@pytest.mark.parametrize("kind", ["reg", "clf"])
def test_criteria_are_the_likelihood_and_the_parameter_count(regime_data, kind):
    X, y, _, _ = regime_data
    X, y = X[:600], y[:600]
    if kind == "reg":
        model = MixtureOfExpertsRegressor(n_experts=3, random_state=0).fit(X, y)
        n_params = 2 * 9 + 3 * 10  # gate: (K - 1)(d + 1); experts: K (d + 2)
        gate = model.gate_proba(X)
        means = np.column_stack([e.predict(X) for e in model.estimators_])
        var = model.noise_variance_
        density = np.exp(-0.5 * (y[:, None] - means) ** 2 / var) / np.sqrt(2 * np.pi * var)
        rows = np.log((gate * density).sum(axis=1))
    else:
        y = np.digitize(y, np.quantile(y, [0.33, 0.66]))  # three classes
        model = MixtureOfExpertsClassifier(n_experts=3, random_state=0).fit(X, y)
        n_params = 2 * 9 + 3 * 2 * 9  # gate; experts: K (C - 1)(d + 1)
        rows = np.log(model.predict_proba(X)[np.arange(600), y])
    # per row, each side is a log of a sum of K terms in float64
    np.testing.assert_allclose(model.log_likelihood_samples(X, y), rows, rtol=1e-9, atol=1e-9)
    log_lik = rows.sum()
    assert model.aic(X, y) == pytest.approx(-2 * log_lik + 2 * n_params, rel=1e-6)
    assert model.bic(X, y) == pytest.approx(-2 * log_lik + n_params * np.log(600), rel=1e-6)


def test_criteria_need_builtin_experts(regime_data):
    X, y, _, _ = regime_data
    reg = MixtureOfExpertsRegressor(DecisionTreeRegressor(max_depth=2), n_experts=2, max_iter=2)
    with pytest.warns(ConvergenceWarning):  # two iterations do not converge
        reg.fit(X[:300], y[:300])
    with pytest.raises(ValueError, match="built-in experts"):
        reg.bic(X[:300], y[:300])


def test_row_log_likelihood_of_wrapped_experts_is_that_of_the_class():
    X, y = load_iris(return_X_y=True)
    clf = MixtureOfExpertsClassifier(
        DecisionTreeClassifier(max_depth=2), n_experts=2, random_state=0
    ).fit(X, y)
    with np.errstate(divide="ignore"):  # a tree may give a class no probability
        expected = np.log(clf.predict_proba(X)[np.arange(len(y)), y])
    np.testing.assert_allclose(clf.log_likelihood_samples(X, y), expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("method", ["aic", "bic", "log_likelihood_samples"])
def test_criteria_reject_unseen_labels(method):
    X, y = load_iris(return_X_y=True)
    clf = MixtureOfExpertsClassifier(n_experts=2, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match=r"labels not seen in fit: \[7\]"):
        getattr(clf, method)(X[:3], [0, 1, 7])
