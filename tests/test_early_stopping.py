"""EM's early stopping: held-out rows scored after each iteration, the best
iteration kept, EM stopped once they stop improving."""

import numpy as np
import pytest
from sklearn.model_selection import train_test_split
from sklearn.tree import DecisionTreeRegressor

from skmoe import MixtureOfExpertsClassifier, MixtureOfExpertsRegressor
from skmoe.datasets import make_regime_classification, make_regime_regression

# tol=0: EM's own rule (a gain under tol) never stops the built-in experts'
# runs; the held-out rows do
PARAMS = dict(early_stopping=True, n_iter_no_change=3, tol=0.0, max_iter=300, random_state=0)


def _held_out(X, y, stratify):
    """The rows a fit holds out: its rows, all distinct and of unit weight,
    are split as given (see skmoe._rows)."""
    split = train_test_split(X, y, test_size=0.1, random_state=0, stratify=y if stratify else None)
    return split[1], split[3]


@pytest.mark.parametrize(
    "kind, estimator",
    [("reg", None), ("reg", DecisionTreeRegressor(max_depth=3)), ("clf", None)],
)
def test_em_keeps_its_best_iteration_on_the_held_out_rows(kind, estimator):
    if kind == "reg":
        X, y = make_regime_regression(
            n_samples=400, n_features=6, n_regimes=3, noise=1.0, random_state=0
        )
        model = MixtureOfExpertsRegressor(estimator, n_experts=8, **PARAMS).fit(X, y)
    else:
        X, y = make_regime_classification(n_samples=400, random_state=0)
        model = MixtureOfExpertsClassifier(estimator, n_experts=6, **PARAMS).fit(X, y)
    scores = model.validation_scores_
    best = int(np.argmax(scores))
    # one score per recorded iteration, moves' runs included; stopped past the
    # best iteration on the held-out rows, whose model is the one kept
    assert len(scores) == model.n_iter_ < PARAMS["max_iter"]
    assert best < len(scores) - 1
    assert model.lower_bound_ == model.lower_bounds_[best]
    X_val, y_val = _held_out(X, y, stratify=kind == "clf")
    # the same sums over the same rows, in the same order
    held_out = model._row_log_likelihood(X_val, y_val).mean()
    np.testing.assert_allclose(held_out, scores[best], rtol=1e-12)


def test_without_early_stopping_there_are_no_validation_scores():
    X, y = make_regime_regression(n_samples=300, n_features=3, random_state=0)
    assert MixtureOfExpertsRegressor(random_state=0).fit(X, y).validation_scores_ is None
