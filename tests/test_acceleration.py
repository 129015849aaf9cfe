"""SQUAREM's extrapolation of EM (skmoe._acceleration)."""

import copy

import numpy as np
import pytest

import skmoe._em
from skmoe import MixtureOfExpertsClassifier, MixtureOfExpertsRegressor
from skmoe._acceleration import em_iterate, set_em_iterate, squarem_point
from skmoe._solvers.em import EM

# short fits, stopped by max_iter
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def test_extrapolation_solves_a_linear_contraction(rng):
    # EM near its optimum is about t -> x + c (t - x); from three iterates
    # SQUAREM's step lands on x, up to the rounding of a few operations
    fixed = [rng.normal(size=(3, 2)), rng.normal(size=4)]
    start = [rng.normal(size=(3, 2)), rng.normal(size=4)]
    c = 0.9

    def em(t):
        return [x + c * (a - x) for a, x in zip(t, fixed, strict=True)]

    point = squarem_point(start, em(start), em(em(start)))
    for got, want in zip(point, fixed, strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_no_extrapolation_where_em_reaches_its_point_at_once(rng):
    # c = 0: the step length is -1, whose point is the last iterate itself;
    # no change at all leaves the step undefined
    fixed = [rng.normal(size=3)]
    start = [rng.normal(size=3)]
    assert squarem_point(start, fixed, fixed) is None
    assert squarem_point(fixed, fixed, fixed) is None


@pytest.fixture
def fitted(regime_data):
    X, y, _, _ = regime_data
    return MixtureOfExpertsRegressor(n_experts=3, random_state=0, max_iter=5).fit(X, y), X, y


def _iterate(model):
    params = model._likelihood.params_arrays(model.noise_variance_)
    return em_iterate(model.gate_, model._experts, params, model._likelihood.unit)


def test_iterate_is_free_of_the_data_units(fitted):
    # X times 1e6 and y times 1e3 pose the same problem: the experts'
    # coefficients shrink by 1e6 and grow by 1e3, the noise variances by 1e6,
    # the scaler's moments by 1e6; the gate's coefficients are unchanged
    model, _, _ = fitted
    scaled = copy.deepcopy(model)
    scaled.gate_.scaler_.mean_ = model.gate_.scaler_.mean_ * 1e6
    scaled.gate_.scaler_.scale_ = model.gate_.scaler_.scale_ * 1e6
    scaled._experts.coef_ = model._experts.coef_ * 1e-3
    scaled._experts.intercept_ = model._experts.intercept_ * 1e3
    scaled.noise_variance_ = model.noise_variance_ * 1e6
    scaled._likelihood.location = (
        model._likelihood.location[0] * 1e3,
        model._likelihood.location[1] * 1e3,
    )
    original, rescaled = _iterate(model), _iterate(scaled)
    # the log-variances differ by log(1e6), a shift that no difference of
    # iterates sees
    rescaled[-1] = rescaled[-1] - np.log(1e6)
    for a, b in zip(original, rescaled, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12 * np.abs(a).max())


@pytest.mark.parametrize("kind", ["reg", "clf", "hierarchical"])
def test_iterate_round_trips(regime_data, kind):
    X, y, _, _ = regime_data
    if kind == "clf":
        model = MixtureOfExpertsClassifier(n_experts=3, max_iter=3, random_state=0)
        model.fit(X, y > np.median(y))
    else:
        n_experts = (2, 2) if kind == "hierarchical" else 3
        model = MixtureOfExpertsRegressor(n_experts=n_experts, max_iter=3, random_state=0)
        model.fit(X, y)
    params = model._likelihood.params_arrays(model._get_params_attributes())
    point = em_iterate(model.gate_, model._experts, params, model._likelihood.unit)
    gate, experts = copy.deepcopy((model.gate_, model._experts))
    rest = set_em_iterate(point, gate, experts, model._likelihood.unit)
    assert len(rest) == len(params)
    for got, want in zip(gate.coefficients(), model.gate_.coefficients(), strict=True):
        np.testing.assert_array_equal(got, want)
    # X's mean is O(1) and the coefficients' scale 1: a few roundings
    for got, want in [
        (experts.coef_, model._experts.coef_),
        (experts.intercept_, model._experts.intercept_),
    ]:
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-13 * np.abs(want).max())


def test_extrapolations_are_kept_only_where_they_gain(regime_data, monkeypatch):
    # on overlapping regimes EM climbs slowly; SQUAREM's steps must be taken
    # there (else the acceleration is lost) and recorded only with a gain.
    # No restarts or moves, which may lower the objective
    monkeypatch.setattr(skmoe._em, "REDUNDANT_DISTANCE", 0.0)
    outcomes = []
    extrapolated = EM._extrapolated_step

    def record(self, point, bound, *args):
        trial = extrapolated(self, point, bound, *args)
        outcomes.append(None if trial is None else trial[-1])
        assert trial is None or trial[-1] > bound
        return trial

    monkeypatch.setattr(EM, "_extrapolated_step", record)
    X, y, _, _ = regime_data
    noisy = y + np.random.RandomState(0).normal(scale=3 * y.std(), size=len(y))
    model = MixtureOfExpertsRegressor(
        n_experts=4, tol=1e-6, min_expert_load=0.0, random_state=0
    ).fit(X, noisy)
    bounds = model.lower_bounds_
    kept = [b for b in outcomes if b is not None]
    assert kept, "no extrapolation was kept"
    assert set(kept) <= set(bounds)
    assert np.all(np.diff(bounds) >= -1e-9 * np.abs(bounds[1:]))
