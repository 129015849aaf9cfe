import numpy as np
import pytest

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


@pytest.fixture
def rng():
    return np.random.RandomState(0)
