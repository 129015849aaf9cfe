"""Load balancing in the mixture."""

import numpy as np
import pytest

import skmoe._em
from skmoe import MixtureOfExpertsRegressor


@pytest.fixture(scope="module")
def dominant_data():
    # one regime (centre at the origin) holds most rows; the others are small
    rng = np.random.RandomState(0)
    X = rng.standard_normal((3000, 4))
    centers = 1.3 * rng.standard_normal((3, 4))
    centers[0] = 0.0
    regimes = ((X[:, None] - centers) ** 2).sum(axis=2).argmin(axis=1)
    y = np.einsum("ij,ij->i", X, 2 * rng.standard_normal((3, 4))[regimes])
    return X, y + 0.3 * rng.standard_normal(3000)


@pytest.mark.parametrize("balance_loss", ["switch", "cv"])
def test_balancing_spreads_the_load(dominant_data, balance_loss):
    X, y = dominant_data

    def load_cv(model):
        return model.expert_load_.std() / model.expert_load_.mean()

    plain = MixtureOfExpertsRegressor(n_experts=6, random_state=0).fit(X, y)
    balanced = MixtureOfExpertsRegressor(
        n_experts=6, balance_loss=balance_loss, balance_coef=0.1, random_state=0
    ).fit(X, y)
    assert load_cv(balanced) < 0.8 * load_cv(plain)
    assert balanced.score(X, y) > plain.score(X, y) - 0.01


@pytest.mark.parametrize("balance_loss", ["switch", "cv"])
def test_em_with_balancing_never_falls(dominant_data, balance_loss, monkeypatch):
    # the balance term is part of the objective each gate M-step lowers
    monkeypatch.setattr(skmoe._em, "REDUNDANT_DISTANCE", 0.0)
    X, y = dominant_data
    model = MixtureOfExpertsRegressor(
        n_experts=4,
        balance_loss=balance_loss,
        balance_coef=0.1,
        tol=1e-6,
        min_expert_load=0.0,
        random_state=0,
    ).fit(X, y)
    bounds = model.lower_bounds_
    assert np.all(np.diff(bounds) >= -1e-9 * np.abs(bounds[1:]))
