"""K weighted ridge regressions solved together: the default regression experts."""

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from sklearn.linear_model import Ridge
from sklearn.utils.extmath import safe_sparse_dot

from .._backend import HOST_SLICE_ROWS, get_namespace, to_numpy
from .._backend._normal_equations import device_normal_equations
from .._backend._products import affine
from .._optim import intercept_free_penalty
from ._gcv import gcv_ridge_solutions


def _weighted_gram(X1, weight):
    """``X1.T @ diag(weight) @ X1`` as a dense array."""
    if sp.issparse(X1):
        return (X1.T @ sp.diags(weight) @ X1).toarray()
    return X1.T @ (X1 * weight[:, None])


def _column_centres(X):
    """The column means of dense X, and a constant column's own value: the
    mean of 3.3e25 repeated rounds to a neighbour, and the column, centred on
    it, would be a constant of 1e9 beside the intercept, which the solve of
    the normal equations cannot tell apart from it."""
    mean = X.mean(axis=0, dtype=np.float64)
    if X.shape[0] == 0:
        return mean
    return np.where(X.min(axis=0) == X.max(axis=0), X[0], mean)


def _normal_equations(X, y, weights, offset=None):
    """The offset (by default the column means of dense X, 0 for sparse), and
    every expert's weighted Gram matrix and right-hand side of
    ``x1 = [x - offset, 1]``, all in float64; the right-hand sides are None
    without ``y``.

    The Gram matrices are sums over all rows, which float32 would round, so
    float32 rows are cast to float64 a slice at a time (no float64 copy of X)
    and the slices' sums added (HOST_SLICE_ROWS rows at a time: the
    copies stay in cache).
    """
    if offset is None:
        offset = np.zeros(X.shape[1]) if sp.issparse(X) else _column_centres(X)
    if X.dtype == np.float64:
        return offset, *_gram_and_rhs(X, y, weights, offset)
    if sp.issparse(X):
        X = X.tocsr()  # whose slices of rows are cheap
    gram = rhs = 0.0
    for start in range(0, X.shape[0], HOST_SLICE_ROWS):
        rows = slice(start, start + HOST_SLICE_ROWS)
        in_float64 = (None if a is None else a[rows].astype(np.float64) for a in (X, y, weights))
        slice_gram, slice_rhs = _gram_and_rhs(*in_float64, offset)
        gram = gram + slice_gram
        rhs = None if y is None else rhs + slice_rhs
    return offset, gram, rhs


def design_matrix(X, offset):
    """``[X - offset, 1]`` in X's floating type, sparse for sparse X (whose
    offset is 0)."""
    ones = np.ones((X.shape[0], 1), dtype=X.dtype)
    if sp.issparse(X):
        return sp.hstack([X, ones], format="csr")
    return np.hstack([X - offset.astype(X.dtype), ones])


def _gram_and_rhs(X, y, weights, offset):
    """Every expert's weighted Gram matrix and right-hand side of
    ``x1 = [x - offset, 1]`` (None without ``y``)."""
    X1 = design_matrix(X, offset)
    gram = np.zeros((weights.shape[1], X1.shape[1], X1.shape[1]))
    for k in range(weights.shape[1]):
        if weights[:, k].any():  # an expert routed no rows (top-k) costs nothing
            gram[k] = _weighted_gram(X1, weights[:, k])
    rhs = None if y is None else safe_sparse_dot(X1.T, weights * y[:, None]).T
    return gram, rhs


def ridge_solutions(gram, rhs, penalty):
    """Every expert's ridge solution, ``theta[k]`` that solves ``(gram[k] +
    diag(penalty)) theta[k] = rhs[k]``, in float64; an expert with no weight
    (the last diagonal entry of its ``gram``) gets zeros."""
    theta = np.zeros(rhs.shape)
    active = gram[:, -1, -1] > 0
    if active.any():
        theta[active] = _solve_spd(gram[active] + np.diag(penalty), rhs[active])
    return theta


def _solve_spd(A, b):
    """Solve the symmetric systems ``A[k] @ x[k] = b[k]`` (float64) by
    Cholesky factorisation, a singular one by least squares. LAPACK's posv
    is called directly: the checks of :func:`scipy.linalg.solve` cost more
    than solves of this size."""
    x = np.empty_like(b)
    for k in range(len(A)):
        _, x[k], info = scipy.linalg.lapack.dposv(A[k], b[k])
        if info != 0:  # not positive definite
            x[k] = scipy.linalg.lstsq(A[k], b[k])[0]
    return x


def _weighted_squares(y, weights):
    """``sum_i w_ik y_i^2`` per expert, summed in float64 on the rows'
    device, as a host array (the running statistics of online EM, and
    ``alpha="auto"``, whose small systems the host solves)."""
    return to_numpy((weights * (y**2)[:, None]).sum(axis=0, dtype=np.float64))


class LinearExperts:
    """``n_experts`` ridge regressions, each with its own row weights.

    Expert ``k`` minimises ``sum_i w_ik (y_i - x_i @ coef_[k] - intercept_[k])^2 +
    alpha_[k] * ||coef_[k]||^2``, the objective of :class:`~sklearn.linear_model.Ridge`
    with ``sample_weight=w[:, k]``, by its normal equations. The Gram matrices are
    formed on column-centred data (dense input) so that features with a large
    offset keep their precision. ``alpha="auto"`` chooses each expert's
    penalty at every fit by generalized cross-validation (see
    :mod:`skmoe.experts._gcv`); ``alpha_`` holds the penalties of the last fit.
    """

    def __init__(self, n_experts, *, alpha=1.0):
        self.n_experts = n_experts
        self.alpha = alpha

    def _solutions(self, gram, rhs, penalty, yy):
        """Every expert's ridge solution (float64) from its normal equations;
        sets ``alpha_``. ``penalty(alpha)`` is the penalty per coordinate;
        ``yy()`` the weighted sums of ``y**2``, which only ``alpha="auto"``
        needs."""
        if self.alpha == "auto":
            theta, self.alpha_ = gcv_ridge_solutions(gram, rhs, yy(), penalty(1.0))
            return theta
        self.alpha_ = np.full(len(gram), float(self.alpha))
        return ridge_solutions(gram, rhs, penalty(self.alpha))

    def fit(self, X, y, weights, random_state=None, design=None):
        """Refit every expert; ``weights`` has shape (n_samples, n_experts).

        With a ``design`` of X's standardised rows that solves the experts
        (see :attr:`skmoe._design.Design.solves_experts`), the normal
        equations are formed from its rows and solved in its coordinates.
        """

        def yy():
            return _weighted_squares(y, weights)

        if design is not None and design.solves_experts:
            rhs = design.moments(weights * y[:, None]).T
            theta = self._solutions(design.grams(weights), rhs, design.ridge_penalty, yy)
            coef, intercept = design.to_original(theta)
            self.coef_, self.intercept_ = coef.astype(X.dtype), intercept.astype(X.dtype)
            return self
        equations = device_normal_equations(X, y, weights)  # on the GPU
        if equations is None:
            equations = _normal_equations(X, y, weights)
        self.solve(*equations, dtype=X.dtype, yy=yy)
        # solved on the host: the coefficients go where X is
        xp = get_namespace(X)
        self.coef_, self.intercept_ = (xp.asarray(a) for a in (self.coef_, self.intercept_))
        return self

    def solve(self, offset, gram, rhs, dtype=np.float64, *, yy=None):
        """Set the coefficients from every expert's normal equations: ``gram``
        (K, d + 1, d + 1) and ``rhs`` (K, d + 1) of ``x1 = [x - offset, 1]``,
        the ridge penalty not yet added; ``yy()``, the weighted sums of
        ``y**2``, for ``alpha="auto"``. An expert with no weight (the last
        diagonal entry of its ``gram``) gets zero coefficients. Solved in
        float64; the coefficients are stored as ``dtype`` (X's, as Ridge's)."""

        def penalty(alpha):
            return intercept_free_penalty(gram.shape[1] - 1, alpha)

        theta = self._solutions(gram, rhs, penalty, yy)
        coef = theta[:, :-1]
        self.intercept_ = (theta[:, -1] - coef @ offset).astype(dtype, copy=False)
        self.coef_ = coef.astype(dtype, copy=False)
        return self

    def predict(self, X):
        """Every expert's prediction, shape (n_samples, n_experts), in X's
        floating type."""
        coef, intercept = (a.astype(X.dtype, copy=False) for a in (self.coef_, self.intercept_))
        return affine(X, coef.T, intercept)

    def squared_norms(self):
        """``||coef_[k]||^2`` per expert: the penalised quantity."""
        return (self.coef_**2).sum(axis=1)

    def to_estimators(self):
        """One fitted :class:`~sklearn.linear_model.Ridge` per expert."""
        estimators = []
        arrays = (to_numpy(self.coef_), to_numpy(self.intercept_), self.alpha_)
        for coef, intercept, alpha in zip(*arrays, strict=True):
            ridge = Ridge(alpha=float(alpha))
            ridge.coef_, ridge.intercept_ = coef.copy(), float(intercept)
            ridge.n_features_in_ = coef.shape[0]
            estimators.append(ridge)
        return estimators
