"""Predictions and the E-step in chunks of rows (sklearn's working_memory)
give what one pass over all rows gives."""

import numpy as np
import pytest
from sklearn import config_context

from skmoe import MixtureOfExpertsClassifier, MixtureOfExpertsRegressor
from skmoe._chunks import in_row_chunks

# about 30 rows per chunk on the test data: many chunks, and a short last one
TINY = dict(working_memory=0.01)


def test_in_row_chunks_cuts_and_joins():
    X = np.arange(30.0).reshape(10, 3)
    calls = []

    def function(a, b):
        calls.append(len(a))
        return a.sum(axis=1), b * 2

    with config_context(working_memory=3 * 24 / 2**20):  # three rows of 24 bytes
        sums, doubled = in_row_chunks(function, 24, X, X[:, 0])
    assert calls == [3, 3, 3, 1]
    np.testing.assert_array_equal(sums, X.sum(axis=1))
    np.testing.assert_array_equal(doubled, X[:, 0] * 2)


@pytest.mark.parametrize("top_k", [None, 2])
def test_regressor_predictions_do_not_depend_on_the_chunks(regime_data, top_k):
    X, y, X_test, _ = regime_data
    model = MixtureOfExpertsRegressor(n_experts=4, top_k=top_k, random_state=0).fit(X, y)
    whole = model.predict(X_test), *model.predict(X_test, return_std=True)
    whole_gate = model.gate_proba(X_test)
    with config_context(**TINY):
        chunked = model.predict(X_test), *model.predict(X_test, return_std=True)
        np.testing.assert_allclose(model.gate_proba(X_test), whole_gate, rtol=1e-12)
    for got, expected in zip(chunked, whole, strict=True):
        # a d-term sum in another order: rounding far under 1e-12 of the scale
        atol = 1e-12 * np.abs(expected).max()
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=atol)


def test_classifier_probabilities_do_not_depend_on_the_chunks(regime_data):
    X, y, X_test, _ = regime_data
    labels = np.digitize(y, np.quantile(y, [0.33, 0.66]))
    model = MixtureOfExpertsClassifier(n_experts=3, random_state=0).fit(X, labels)
    whole = model.predict_proba(X_test)
    with config_context(**TINY):
        np.testing.assert_allclose(model.predict_proba(X_test), whole, rtol=1e-12)


@pytest.mark.parametrize("top_k", [None, 2])
def test_a_fit_with_the_e_step_in_chunks_is_the_same_fit(regime_data, top_k, fixed_em):
    # chunks change only the blocks BLAS multiplies, so the order of a few
    # short sums (1e-16 relative); the fixture keeps EM from parting there
    X, y, X_test, _ = regime_data
    params = dict(n_experts=4, top_k=top_k, random_state=0, max_iter=30, **fixed_em)
    whole = MixtureOfExpertsRegressor(**params).fit(X, y)
    with config_context(**TINY):
        chunked = MixtureOfExpertsRegressor(**params).fit(X, y)
    np.testing.assert_allclose(chunked.lower_bound_, whole.lower_bound_, rtol=1e-10)
    expected = whole.predict(X_test)
    np.testing.assert_allclose(
        chunked.predict(X_test), expected, rtol=1e-8, atol=1e-8 * np.abs(expected).max()
    )
