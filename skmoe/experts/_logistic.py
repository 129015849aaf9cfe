"""K weighted logistic regressions solved as one problem: the default classifier experts."""

import numpy as np
from scipy.special import expit
from sklearn.linear_model import LogisticRegression
from sklearn.utils.extmath import safe_sparse_dot

from .._math import exp_floored, log_softmax_rows, softmax_cross_entropy
from .._optim import fit_linear_lbfgs, sigmoid_cross_entropy


class LogisticExperts:
    """``n_experts`` L2-penalised logistic regressions with their own row weights.

    Expert ``k`` minimises ``sum_i w_ik * log_loss_i + alpha / 2 * ||coef_k||^2``, the
    objective of ``LogisticRegression(C=1 / alpha)`` with ``sample_weight=w[:, k]``:
    a sigmoid model for two classes, a multinomial one for more. The K problems
    are separable, so one L-BFGS run over all their parameters solves each of
    them; every refit warm-starts from the previous solution.
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
            self.coef_ = np.zeros((K, m, X.shape[1]))
            self.intercept_ = np.zeros((K, m))
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
            X,
            loss,
            self.coef_.reshape(K * m, -1).T,
            self.intercept_.ravel(),
            alpha=self.alpha,
            scale=max(weights.sum(), np.finfo(float).tiny),
            max_iter=self.max_iter,
            tol=self.tol,
        )
        self.coef_ = coef.T.reshape(K, m, -1)
        self.intercept_ = intercept.reshape(K, m)
        return self

    def predict_proba(self, X):
        """Every expert's class probabilities, shape (n_samples, n_experts, n_classes)."""
        K, m = self.n_experts, self._n_outputs
        logits = safe_sparse_dot(X, self.coef_.reshape(K * m, -1).T) + self.intercept_.ravel()
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
