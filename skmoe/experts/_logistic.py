"""K weighted logistic regressions solved as one problem: the default classifier experts."""

import numpy as np
import scipy.linalg
from scipy.special import expit
from sklearn.linear_model import LogisticRegression
from sklearn.utils.extmath import safe_sparse_dot

from .._math import exp_floored, log_softmax_rows, softmax_cross_entropy
from .._optim import _damped_cholesky, fit_linear_lbfgs, linear_loss, sigmoid_cross_entropy
from ._linear import _weighted_gram


class LogisticExperts:
    """``n_experts`` L2-penalised logistic regressions with their own row weights.

    Expert ``k`` minimises ``sum_i w_ik * log_loss_i + alpha / 2 * ||coef_k||^2``, the
    objective of ``LogisticRegression(C=1 / alpha)`` with ``sample_weight=w[:, k]``:
    a sigmoid model for two classes, a multinomial one for more. The K problems
    are separable, so one L-BFGS run over all their parameters solves each of
    them; every refit warm-starts from the previous solution. The products
    run in X's floating type, and the coefficients are stored in it (as
    LogisticRegression's).
    """

    def __init__(self, n_experts, n_classes, *, alpha=1.0, max_iter=500, tol=1e-8):
        self.n_experts = n_experts
        self.n_classes = n_classes
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = tol

    @property
    def _n_outputs(self):
        return 1 if self.n_classes == 2 else self.n_classes

    def fit(self, X, y, weights, random_state=None):
        """Refit every expert; ``y`` holds class indices, ``weights`` (n, K)."""
        K, m = self.n_experts, self._n_outputs
        if not hasattr(self, "coef_"):
            self.coef_ = np.zeros((K, m, X.shape[1]), dtype=X.dtype)
            self.intercept_ = np.zeros((K, m), dtype=X.dtype)
        # L-BFGS computes in the coefficients' type: X's
        self.coef_, self.intercept_ = (
            a.astype(X.dtype, copy=False) for a in (self.coef_, self.intercept_)
        )
        n = X.shape[0]
        if m == 1:
            positive = (y == 1)[:, None]

            def loss(logits):
                return sigmoid_cross_entropy(logits, positive, weights)

        else:
            targets = weights[:, :, None] * (y[:, None, None] == np.arange(m))

            def loss(logits):
                value, grad, _ = softmax_cross_entropy(logits.reshape(n, K, m), targets)
                return value, grad.reshape(n, K * m)

        # parameters laid out as (n_features, K * m) so all logits come from one GEMM
        coef, intercept = fit_linear_lbfgs(
            linear_loss(X, loss),
            self.coef_.reshape(K * m, -1).T,
            self.intercept_.ravel(),
            alpha=self.alpha,
            scale=max(weights.sum(), np.finfo(float).tiny),
            max_iter=self.max_iter,
            # float32 losses hold about 7 digits: below that L-BFGS chases rounding
            tol=max(self.tol, 10 * np.finfo(X.dtype).eps),
        )
        self.coef_ = coef.T.reshape(K, m, -1)
        self.intercept_ = intercept.reshape(K, m)
        return self

    def parameters(self, n_features):
        """Each expert's parameters as one row, class by class ``[coef, intercept]``:
        shape (K, m * (n_features + 1)); zeros before the first fit."""
        K, m = self.n_experts, self._n_outputs
        if not hasattr(self, "coef_"):
            self.coef_, self.intercept_ = np.zeros((K, m, n_features)), np.zeros((K, m))
        return np.concatenate([self.coef_, self.intercept_[..., None]], axis=2).reshape(K, -1)

    def loss_derivatives(self, k, X1, y, weight):
        """Gradient and Hessian of expert ``k``'s weighted log-loss in its
        :meth:`parameters`, on rows ``X1 = [X, 1]`` with class indices ``y``."""
        m = self._n_outputs
        theta = self.parameters(X1.shape[1] - 1)[k].reshape(m, -1)
        logits = safe_sparse_dot(X1, theta.T)
        if m == 1:
            p = expit(logits[:, 0])
            grad = safe_sparse_dot(X1.T, weight * (p - (y == 1)))
            return grad, _weighted_gram(X1, weight * p * (1 - p))
        p = exp_floored(log_softmax_rows(logits))
        residual = p - (y[:, None] == np.arange(m))
        grad = safe_sparse_dot(X1.T, weight[:, None] * residual).T.ravel()
        d1 = X1.shape[1]
        hessian = np.empty((m * d1, m * d1))
        for a in range(m):
            for b in range(a, m):
                block = _weighted_gram(X1, weight * p[:, a] * ((a == b) - p[:, b]))
                hessian[a * d1 : (a + 1) * d1, b * d1 : (b + 1) * d1] = block
                hessian[b * d1 : (b + 1) * d1, a * d1 : (a + 1) * d1] = block.T
        return grad, hessian

    def solve(self, hessian, rhs, dtype=np.float64):
        """Set each expert's parameters to the minimiser of ``1/2 t^T H t - rhs^T t``
        plus the ridge penalty on the coefficients (not the intercepts);
        solved in float64, stored as ``dtype``."""
        K, m = self.n_experts, self._n_outputs
        d1 = rhs.shape[1] // m
        penalty = np.tile(np.r_[np.full(d1 - 1, float(self.alpha)), 0.0], m)
        # a softmax's Hessian is singular along the shift all its intercepts
        # share: damped, as the gate's, and the intercepts kept centred
        theta = np.array(
            [
                scipy.linalg.cho_solve(_damped_cholesky(h + np.diag(penalty)), r)
                for h, r in zip(hessian, rhs, strict=True)
            ]
        ).reshape(K, m, d1)
        coef, intercept = theta[..., :-1], theta[..., -1].copy()
        if m > 1:
            intercept -= intercept.mean(axis=1, keepdims=True)
        self.coef_, self.intercept_ = coef.astype(dtype), intercept.astype(dtype)
        return self

    def predict_proba(self, X):
        """Every expert's class probabilities, shape (n_samples, n_experts, n_classes),
        in X's floating type."""
        K, m = self.n_experts, self._n_outputs
        coef, intercept = (a.astype(X.dtype, copy=False) for a in (self.coef_, self.intercept_))
        logits = safe_sparse_dot(X, coef.reshape(K * m, -1).T) + intercept.ravel()
        logits = logits.reshape(-1, K, m)
        if m == 1:
            p1 = expit(logits)
            return np.concatenate([1.0 - p1, p1], axis=2)
        return exp_floored(log_softmax_rows(logits))

    def squared_norms(self):
        """``||coef_k||^2`` per expert: the penalised quantity."""
        return np.einsum("kcj,kcj->k", self.coef_, self.coef_)

    def to_estimators(self):
        """One fitted :class:`~sklearn.linear_model.LogisticRegression` per expert."""
        estimators = []
        for coef, intercept in zip(self.coef_, self.intercept_, strict=True):
            logreg = LogisticRegression(C=1.0 / self.alpha if self.alpha else np.inf)
            logreg.coef_, logreg.intercept_ = coef.copy(), intercept.copy()
            logreg.classes_ = np.arange(self.n_classes)
            logreg.n_features_in_ = coef.shape[1]
            logreg.n_iter_ = np.zeros(1, dtype=np.int32)
            estimators.append(logreg)
        return estimators
