"""Penalised linear models on logits, fitted by L-BFGS.

The gate (a multinomial logistic model of soft targets) and the built-in logistic
experts (K weighted logistic regressions solved as one problem) share one shape:
minimise ``loss(X @ coef + intercept) + alpha / 2 * ||coef||^2``. This module holds
that solver; the losses on logits live beside it and in ``_math``.
"""

from functools import cache

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit
from sklearn.utils.extmath import safe_sparse_dot
from threadpoolctl import ThreadpoolController


@cache
def _threadpool_controller():
    return ThreadpoolController()


def sigmoid_cross_entropy(logits, positive, weights):
    """Weighted binary cross-entropy of sigmoid(logits).

    ``positive`` is a boolean array broadcastable to ``logits``; ``weights`` has the
    shape of ``logits``. Returns the loss and its derivative with respect to logits.
    """
    # -log sigmoid(z) = log(1 + exp(-z)); -log(1 - sigmoid(z)) = log(1 + exp(z))
    loss = np.vdot(weights, np.logaddexp(0.0, logits) - positive * logits)
    grad = weights * (expit(logits) - positive)
    return loss, grad


def fit_linear_lbfgs(X, logit_loss, coef, intercept, *, alpha, scale, max_iter, tol):
    """Minimise ``logit_loss(X @ coef + intercept) + alpha / 2 * ||coef||^2``.

    Parameters
    ----------
    X : {ndarray, sparse matrix} of shape (n_samples, n_features)
    logit_loss : callable
        Maps logits of shape (n_samples, n_outputs) to ``(loss, grad)``.
    coef : ndarray of shape (n_features, n_outputs)
        Starting point (warm start).
    intercept : ndarray of shape (n_outputs,)
        Starting point; never penalised.
    alpha : float
        L2 penalty on ``coef``.
    scale : float
        Positive divisor of the objective (the total sample weight), so that
        ``tol`` means the same thing whatever the number of rows.
    max_iter : int
    tol : float
        L-BFGS tolerance on the projected gradient of the scaled objective.

    Returns
    -------
    coef, intercept : ndarray
        The minimiser. L-BFGS only accepts steps that lower the objective, so the
        result is never worse than the starting point: EM stays monotone.
    """
    n_features, n_outputs = coef.shape
    split = n_features * n_outputs

    def objective(theta):
        w = theta[:split].reshape(n_features, n_outputs)
        loss, grad = logit_loss(safe_sparse_dot(X, w) + theta[split:])
        value = loss + 0.5 * alpha * np.vdot(w, w)
        grad_w = safe_sparse_dot(X.T, grad) + alpha * w
        return value / scale, np.concatenate([grad_w.ravel(), grad.sum(axis=0)]) / scale

    theta0 = np.concatenate([coef.ravel(), intercept])
    # The products here are thin (n x d times d x m) and alternate with
    # element-wise work; a multi-threaded BLAS gains nothing on them, and its
    # spinning workers slow the element-wise work several-fold (as KMeans,
    # scikit-learn limits BLAS to one thread around such loops).
    with _threadpool_controller().limit(limits=1, user_api="blas"):
        result = minimize(
            objective,
            theta0,
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": max_iter, "gtol": tol},
        )
    theta = result.x
    return theta[:split].reshape(n_features, n_outputs), theta[split:].copy()
