"""K weighted ridge regressions solved together: the default regression experts."""

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from sklearn.linear_model import Ridge
from sklearn.utils.extmath import safe_sparse_dot

from .._backend import get_namespace, is_cupy_array, to_numpy


def _weighted_gram(X1, weight):
    """``X1.T @ diag(weight) @ X1`` as a dense array."""
    if sp.issparse(X1):
        return (X1.T @ sp.diags(weight) @ X1).toarray()
    return X1.T @ (X1 * weight[:, None])


def _solve_spd(A, b):
    """Solve the symmetric system, falling back to least squares if singular."""
    try:
        return scipy.linalg.solve(A, b, assume_a="pos")
    except (np.linalg.LinAlgError, scipy.linalg.LinAlgError):
        return scipy.linalg.lstsq(A, b)[0]


class LinearExperts:
    """``n_experts`` ridge regressions, each with its own row weights.

    Expert ``k`` minimises ``sum_i w_ik (y_i - x_i @ coef_[k] - intercept_[k])^2 +
    alpha * ||coef_[k]||^2``, the objective of :class:`~sklearn.linear_model.Ridge`
    with ``sample_weight=w[:, k]``, by its normal equations. The Gram matrices are
    formed on column-centred data (dense input) so that features with a large
    offset keep their precision.
    """

    def __init__(self, n_experts, *, alpha=1.0):
        self.n_experts = n_experts
        self.alpha = alpha

    def fit(self, X, y, weights, random_state=None):
        """Refit every expert; ``weights`` has shape (n_samples, n_experts)."""
        if is_cupy_array(X):
            return self._fit_device(X, y, weights)
        offset = np.zeros(X.shape[1]) if sp.issparse(X) else X.mean(axis=0)
        ones = np.ones((X.shape[0], 1))
        X1 = sp.hstack([X, ones], format="csr") if sp.issparse(X) else np.hstack([X - offset, ones])
        penalty = np.full(X1.shape[1], float(self.alpha))
        penalty[-1] = 0.0  # the intercept is not penalised
        theta = np.empty((self.n_experts, X1.shape[1]))
        for k in range(self.n_experts):
            w = weights[:, k]
            if not w.any():  # no rows routed here (top-k): nothing to fit
                theta[k] = 0.0
                continue
            gram = _weighted_gram(X1, w)
            gram[np.diag_indices_from(gram)] += penalty
            theta[k] = _solve_spd(gram, safe_sparse_dot(X1.T, w * y))
        self.coef_ = theta[:, :-1]
        self.intercept_ = theta[:, -1] - self.coef_ @ offset
        return self

    def _fit_device(self, X, y, weights):
        """The same normal equations on the GPU: K weighted Gram products of
        the centred data, one batched solve."""
        xp = get_namespace(X)
        n, d = X.shape
        offset = xp.ones(n, dtype=X.dtype) @ X / n  # CuPy's column mean is slow on tall arrays
        X1 = xp.hstack([X - offset, xp.ones((n, 1), dtype=X.dtype)])
        gram = xp.stack([X1.T @ (X1 * weights[:, [k]]) for k in range(self.n_experts)])
        rhs = (weights * y[:, None]).T @ X1
        penalty = xp.full(d + 1, self.alpha, dtype=X.dtype)
        penalty[d] = 0.0  # the intercept is not penalised
        gram += xp.diag(penalty)
        empty = weights.sum(axis=0) <= 0  # no rows routed here: nothing to fit
        gram = xp.where(empty[:, None, None], xp.eye(d + 1, dtype=X.dtype), gram)
        rhs = xp.where(empty[:, None], 0.0, rhs)
        theta = xp.linalg.solve(gram, rhs[..., None])[..., 0]
        self.coef_ = theta[:, :-1]
        self.intercept_ = theta[:, -1] - self.coef_ @ offset
        return self

    def predict(self, X):
        """Every expert's prediction, shape (n_samples, n_experts)."""
        return safe_sparse_dot(X, self.coef_.T) + self.intercept_

    def squared_norms(self):
        """``||coef_[k]||^2`` per expert: the penalised quantity."""
        return (self.coef_**2).sum(axis=1)

    def to_estimators(self):
        """One fitted :class:`~sklearn.linear_model.Ridge` per expert."""
        estimators = []
        for coef, intercept in zip(to_numpy(self.coef_), to_numpy(self.intercept_), strict=True):
            ridge = Ridge(alpha=self.alpha)
            ridge.coef_, ridge.intercept_ = coef.copy(), float(intercept)
            ridge.n_features_in_ = coef.shape[0]
            estimators.append(ridge)
        return estimators
