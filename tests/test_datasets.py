"""The synthetic data sets: shapes, reproducibility, and the regimes they promise."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from skmoe.datasets import make_regime_classification, make_regime_regression


@pytest.mark.parametrize("n_classes", [2, 3, 5])
def test_regime_classification_shapes_and_classes(n_classes):
    X, y = make_regime_classification(
        n_samples=3000, n_features=5, n_classes=n_classes, random_state=0
    )
    assert X.shape == (3000, 5) and y.shape == (3000,)
    assert X.dtype == np.float64
    assert np.issubdtype(y.dtype, np.integer)
    assert np.array_equal(np.unique(y), np.arange(n_classes))


def test_regime_classification_reproducible():
    first = make_regime_classification(n_samples=500, random_state=7)
    again = make_regime_classification(n_samples=500, random_state=7)
    other = make_regime_classification(n_samples=500, random_state=8)
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[0], other[0])


def test_regime_classification_return_regimes():
    X, y, regimes = make_regime_classification(
        n_samples=2000, n_regimes=3, random_state=0, return_regimes=True
    )
    assert regimes.shape == y.shape
    assert set(np.unique(regimes)) <= {0, 1, 2}
    # same rows and regimes as the regression counterpart for the same arguments
    X_reg, _, regimes_reg = make_regime_regression(
        n_samples=2000, n_regimes=3, random_state=0, return_regimes=True
    )
    np.testing.assert_array_equal(X, X_reg)
    np.testing.assert_array_equal(regimes, regimes_reg)


def test_regime_classification_laws_differ_by_regime():
    # One logistic model per true regime should beat a single global one on
    # held-out rows, because each regime draws its own class boundaries.
    X, y, regimes = make_regime_classification(
        n_samples=8000, n_classes=3, random_state=1, return_regimes=True
    )
    train, test = slice(0, 6000), slice(6000, None)
    glob = LogisticRegression().fit(X[train], y[train]).score(X[test], y[test])
    pred = np.empty(2000, dtype=y.dtype)
    for k in np.unique(regimes[test]):
        rows, test_rows = regimes[train] == k, regimes[test] == k
        model = LogisticRegression().fit(X[train][rows], y[train][rows])
        pred[test_rows] = model.predict(X[test][test_rows])
    per_regime = np.mean(pred == y[test])
    assert per_regime > glob + 0.1
