"""A fit sees each distinct row once, with its copies' summed weight."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import ConvergenceWarning
from sklearn.tree import DecisionTreeRegressor

import skmoe._rows
from skmoe import MixtureOfExpertsClassifier, MixtureOfExpertsRegressor
from skmoe._rows import distinct_rows, row_hashes
from skmoe.datasets import make_regime_regression


def _spellings(seed):
    """Rows with integer weights (zeros included), and the same rows repeated
    as often as their weights say, in another order."""
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(40, 5))
    y = rng.normal(size=40)
    weight = rng.randint(0, 4, size=40)
    order = rng.permutation(int(weight.sum()))
    return X, y, weight, X.repeat(weight, axis=0)[order], y.repeat(weight)[order]


def test_weights_and_copies_give_the_same_rows():
    X, y, weight, X_copies, y_copies = _spellings(0)
    weighted = distinct_rows(X, y, weight.astype(float))
    copies = distinct_rows(X_copies, y_copies, np.ones(len(y_copies)))
    assert_array_equal(X[weighted.rows], X_copies[copies.rows])
    assert_array_equal(y[weighted.rows], y_copies[copies.rows])
    assert_array_equal(weighted.weight, copies.weight)
    assert_array_equal(np.sort(weighted.rows), np.flatnonzero(weight))  # zero weights gone
    # each row of positive weight points at the kept copy of itself
    assert_array_equal(X[weighted.rows][weighted.group], X[weighted.positive])


def test_distinct_unweighted_rows_stay_as_given():
    # the common case, with no copy of X; zero weights are the rows left out
    X, y, *_ = _spellings(0)
    weight = np.ones(len(y))
    assert_array_equal(distinct_rows(X, y, weight).rows, np.arange(len(y)))
    weight[::3] = 0.0
    assert_array_equal(distinct_rows(X, y, weight).rows, np.flatnonzero(weight))


def test_labels_tell_equal_features_apart():
    X = np.zeros((4, 2))
    distinct = distinct_rows(X, np.array(["a", "b", "a", "b"], dtype=object), np.ones(4))
    assert_array_equal(np.sort(distinct.weight), [2.0, 2.0])
    assert distinct_rows(X, None, np.ones(4)).weight.tolist() == [4.0]


@pytest.mark.parametrize("container", [sp.csr_matrix, sp.csc_matrix])
def test_sparse_rows_hash_as_their_dense_copies(container):
    sparse = container(np.random.RandomState(0).binomial(1, 0.3, size=(50, 6)) * 1.5)
    sparse.data[::3] = 0.0  # explicit zeros count as absent ones
    X = sparse.toarray()
    assert_array_equal(row_hashes(sparse), row_hashes(X))
    assert_array_equal(row_hashes(X.astype(np.float32)), row_hashes(sparse.astype(np.float32)))


def test_rows_of_small_integers_get_distinct_hashes():
    # such rows differ only in their exponent bits; a hash linear in the bits
    # would merge about 2**-12 of their pairs, here some 8 of 32640
    grid = np.stack(np.meshgrid(*[np.arange(4.0)] * 4), axis=-1).reshape(-1, 4)
    assert np.unique(row_hashes(grid)).size == len(grid) == 256


def test_a_shared_hash_keeps_the_rows_as_given(monkeypatch):
    monkeypatch.setattr(skmoe._rows, "_mix", lambda z: z * np.uint64(0))  # every hash 0
    X, y, weight, *_ = _spellings(1)
    distinct = distinct_rows(X, y, weight.astype(float))
    assert_array_equal(distinct.rows, np.flatnonzero(weight))
    assert_array_equal(distinct.weight, weight[weight > 0])


@pytest.mark.parametrize(
    "estimator",
    [MixtureOfExpertsRegressor(n_experts=3), MixtureOfExpertsRegressor(DecisionTreeRegressor())],
)
def test_fit_with_weights_is_the_fit_on_copies_in_any_order(estimator):
    # the same arrays reach EM, so the two fits agree to rounding at most (the
    # tolerance of scikit-learn's check of sample weights; exactly, where
    # BLAS gives equal results for equal inputs)
    X, y = make_regime_regression(n_samples=300, n_features=3, random_state=0)
    weight = np.random.RandomState(0).randint(0, 3, size=300)
    order = np.random.RandomState(1).permutation(int(weight.sum()))
    weighted = estimator.set_params(random_state=0).fit(X, y, sample_weight=weight)
    predictions = weighted.predict(X)
    copies = estimator.fit(X.repeat(weight, axis=0)[order], y.repeat(weight)[order])
    assert_allclose(copies.predict(X), predictions, rtol=1e-7)


def test_initial_responsibilities_follow_their_rows():
    X, y = make_regime_regression(n_samples=300, n_features=3, random_state=0)
    init = np.random.RandomState(0).dirichlet(np.ones(3), size=300)
    weight = np.r_[np.full(150, 2), np.ones(150)].astype(int)
    model = MixtureOfExpertsRegressor(n_experts=3, init=init, random_state=0)
    predictions = model.fit(X, y, sample_weight=weight).predict(X)
    model.set_params(init=init.repeat(weight, axis=0))
    copies = model.fit(X.repeat(weight, axis=0), y.repeat(weight)).predict(X)
    assert_allclose(copies, predictions, rtol=1e-7)


def test_initial_responsibilities_with_early_stopping():
    # the validation rows are split off with their initial responsibilities
    X, y = make_regime_regression(n_samples=300, n_features=3, random_state=0)
    init = np.random.RandomState(0).dirichlet(np.ones(3), size=300)
    model = MixtureOfExpertsClassifier(
        n_experts=3, init=init, solver="gradient", early_stopping=True, max_iter=5
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # 5 epochs
        model.fit(X, y > np.median(y))
    assert len(model.validation_scores_) > 0
