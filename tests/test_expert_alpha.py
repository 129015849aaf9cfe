"""expert_alpha="auto" of the regressor: each ridge expert's penalty chosen
by generalized cross-validation at every M-step (the classifier's, by the
evidence, is tested in test_evidence_penalties.py)."""

import numpy as np
import pytest
from sklearn.linear_model import Ridge
from sklearn.utils._param_validation import InvalidParameterError

from skmoe import MixtureOfExpertsClassifier, MixtureOfExpertsRegressor
from skmoe.datasets import make_regime_regression
from skmoe.experts._gcv import RELATIVE_ALPHAS, gcv_ridge_solutions


def _gcv_by_refits(X, y, w, alphas):
    """The GCV criterion of each penalty from a Ridge fit and the trace of
    its hat matrix formed explicitly: m RSS / (m - df)^2, m the weight."""
    X1 = np.hstack([X, np.ones((len(X), 1))])
    gram = X1.T @ (X1 * w[:, None])
    penalty = np.diag(np.append(np.ones(X.shape[1]), 0.0))
    m, scores = w.sum(), []
    for alpha in alphas:
        ridge = Ridge(alpha=alpha).fit(X, y, sample_weight=w)
        rss = w @ (y - ridge.predict(X)) ** 2
        df = np.trace(np.linalg.solve(gram + alpha * penalty, gram))
        # a penalty must leave a unit of weight to the residuals
        scores.append(m * rss / (m - df) ** 2 if m - df >= 1 else np.inf)
    return np.array(scores)


def _normal_equations(X, y, w):
    X1 = np.hstack([X, np.ones((len(X), 1))])
    return X1.T @ (X1 * w[:, None]), X1.T @ (w * y), w @ y**2


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_penalty_minimises_gcv_over_the_grid(seed):
    rng = np.random.RandomState(seed)
    X = rng.standard_normal((60, 8)) * np.arange(1, 9)  # features of unequal scale
    y = X @ rng.standard_normal(8) * 0.2 + rng.standard_normal(60)
    w = rng.uniform(0, 2, 60)
    gram, rhs, yy = _normal_equations(X, y, w)
    theta, alpha = gcv_ridge_solutions(gram[None], rhs[None], np.array([yy]), np.ones(9))
    centred = X - np.average(X, axis=0, weights=w)
    scale = np.linalg.eigvalsh(centred.T @ (centred * w[:, None])).mean()
    grid = scale * RELATIVE_ALPHAS
    assert alpha[0] == pytest.approx(grid[_gcv_by_refits(X, y, w, grid).argmin()], rel=1e-12)
    ridge = Ridge(alpha=alpha[0]).fit(X, y, sample_weight=w)
    # two solves of one system of condition number under 1e4 (the features'
    # scales, squared), in float64
    np.testing.assert_allclose(theta[0, :-1], ridge.coef_, rtol=1e-9, atol=1e-12)
    assert theta[0, -1] == pytest.approx(ridge.intercept_, rel=1e-9)


def test_an_expert_without_rows_or_with_too_few():
    rng = np.random.RandomState(0)
    X, y = rng.standard_normal((5, 8)), rng.standard_normal(5)
    few = _normal_equations(X, y, np.ones(5))  # 5 rows, 9 parameters
    none = _normal_equations(X, y, np.zeros(5))
    gram, rhs, yy = (np.stack(a) for a in zip(few, none, strict=True))
    theta, alpha = gcv_ridge_solutions(gram, rhs, yy, np.ones(9))
    # 5 rows and 9 parameters: only the penalties that leave a residual
    # degree of freedom are scored, not the interpolating ones
    grid = np.linalg.eigvalsh(np.cov(X.T, bias=True) * 5).mean() * RELATIVE_ALPHAS
    scores = _gcv_by_refits(X, y, np.ones(5), grid)
    assert np.isinf(scores[0]) and np.isfinite(scores[-1])
    assert alpha[0] == pytest.approx(grid[scores.argmin()], rel=1e-9)
    assert np.all(theta[1] == 0) and alpha[1] == 1.0
    # under 2 units of weight, no penalty leaves one: the largest is taken
    tiny = _normal_equations(X, y, np.full(5, 0.3))
    alpha = gcv_ridge_solutions(*(np.array([a]) for a in tiny), np.ones(9))[1]
    assert alpha[0] == pytest.approx(0.3 * grid[-1], rel=1e-9)


def test_one_expert_is_ridge_at_its_gcv_penalty():
    X, y = make_regime_regression(n_samples=400, n_features=6, random_state=0)
    model = MixtureOfExpertsRegressor(n_experts=1, expert_alpha="auto").fit(X, y)
    (ridge,) = model.estimators_
    centred = X - X.mean(axis=0)
    grid = np.linalg.eigvalsh(centred.T @ centred).mean() * RELATIVE_ALPHAS
    assert ridge.alpha == pytest.approx(
        grid[_gcv_by_refits(X, y, np.ones(len(y)), grid).argmin()], rel=1e-9
    )
    expected = Ridge(alpha=ridge.alpha).fit(X, y)
    np.testing.assert_allclose(ridge.coef_, expected.coef_, rtol=1e-8, atol=1e-10)


def test_each_expert_has_its_own_penalty_and_the_objective_holds_them():
    X, y = make_regime_regression(n_samples=3000, n_features=4, n_regimes=3, random_state=0)
    model = MixtureOfExpertsRegressor(n_experts=3, expert_alpha="auto", random_state=0).fit(X, y)
    alphas = np.array([e.alpha for e in model.estimators_])
    assert len(np.unique(alphas)) > 1
    norms = np.array([(e.coef_**2).sum() for e in model.estimators_])
    penalty = 0.5 * (alphas * norms / model.noise_variance_).sum() + model.gate_.penalty()
    log_lik = model.log_likelihood_samples(X, y).sum()
    # the objective EM recorded: the mean log-likelihood less the penalties
    assert model.lower_bound_ == pytest.approx((log_lik - penalty) / len(y), rel=1e-9)


def test_partial_fit_chooses_penalties():
    X, y = make_regime_regression(n_samples=2000, n_features=4, n_regimes=2, random_state=0)
    model = MixtureOfExpertsRegressor(n_experts=2, expert_alpha="auto", random_state=0)
    for chunk in np.array_split(np.arange(2000), 4):
        model.partial_fit(X[chunk], y[chunk])
    assert all(e.alpha > 0 for e in model.estimators_)


@pytest.mark.parametrize("Model", [MixtureOfExpertsRegressor, MixtureOfExpertsClassifier])
def test_auto_penalty_needs_em(Model):
    X, y = make_regime_regression(n_samples=200, n_features=3, random_state=0)
    y = y if Model is MixtureOfExpertsRegressor else y > 0
    with pytest.raises(ValueError, match="expert_alpha='auto'.*solver='gradient'"):
        Model(expert_alpha="auto", solver="gradient").fit(X, y)
    with pytest.raises(InvalidParameterError, match="expert_alpha"):
        Model(expert_alpha="best").fit(X, y)
