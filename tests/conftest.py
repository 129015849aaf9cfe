import os

# Several tests assert that equal inputs give bit-identical fits. OpenBLAS's
# results depend on the inputs alone; MKL's can also depend on memory
# alignment unless conditional numerical reproducibility is on (read at its
# first call, so set before any BLAS work).
os.environ.setdefault("MKL_CBWR", "COMPATIBLE")

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

import skmoe._em
import skmoe._solvers.em
from skmoe._backend import cupy_available
from skmoe.datasets import make_regime_regression


def pytest_collection_modifyitems(config, items):
    if cupy_available():
        return
    skip = pytest.mark.skip(reason="needs CuPy and a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def regime_data():
    """Piecewise-linear data with 4 regimes, split into train and test halves."""
    X, y = make_regime_regression(n_samples=6000, random_state=0)
    return X[:4000], y[:4000], X[4000:], y[4000:]


@pytest.fixture(scope="session")
def separated_regimes():
    """Two linear regimes in 3 features with a gap between them (|x_0| >= 1),
    2000 training and 2000 test rows: no row lies near the gate's boundary,
    where a prediction turns with the gate's logits, so two fits that differ
    by rounding differ in their predictions by no more than their experts do."""

    def draw(seed, n_samples=2000):
        rng = np.random.RandomState(seed)
        X = rng.uniform(1, 3, size=(n_samples, 3))
        X[:, 0] *= rng.choice([-1, 1], size=n_samples)
        right = X[:, 0] > 0
        coef = np.where(right[:, None], [2.0, -1.0, 0.5], [-1.0, 0.5, 2.0])
        noise = 0.1 * rng.normal(size=n_samples)
        return X, (X * coef).sum(axis=1) + np.where(right, 3.0, -3.0) + noise

    return *draw(0), *draw(1)


@pytest.fixture
def rng():
    return np.random.RandomState(0)


@pytest.fixture
def fixed_em(monkeypatch):
    """Parameters under which EM makes none of its discrete choices: it runs
    ``max_iter`` iterations (``tol=0`` never stops it), restarts no expert,
    makes no merge-and-split move and tries no SQUAREM extrapolation (whose
    acceptance compares two objectives).

    Two fits that differ only in the order or precision of their arithmetic
    (float32, chunks, memory layout) can otherwise part at such a choice and
    reach different optima; under these parameters they apply one fixed map
    the same number of times, and differ only by rounding carried through it.
    """
    monkeypatch.setattr(skmoe._em, "REDUNDANT_DISTANCE", 0.0)
    monkeypatch.setattr(skmoe._solvers.em, "squarem_point", lambda *path: None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # tol=0 never converges
        yield dict(tol=0.0, min_expert_load=0.0)
