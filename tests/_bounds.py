"""Error bounds for comparing approximate solutions of penalised logistic
problems (L-BFGS, a few Newton steps) with each other or with scikit-learn's.

Two solvers stop at different points near one minimiser; how near, each
point's gradient says. For a function whose Hessian is at least ``mu`` along
the way to its minimiser, a point of gradient ``g`` lies within
``|g| / mu`` of it. The bound below takes ``mu`` as half the least eigenvalue
of the Hessian at the point (the step is short enough, at the gradients these
solvers stop at, that the Hessian changes far less than that), leaving out
the one direction a softmax ignores (a shift shared by all classes'
intercepts). The bound follows the gradient: a point far from the minimiser
gets a loose one. So a test first holds the solution under test to its
solver's stopping rule (``scaled_gradient`` at most ``tol``), which makes its
bound tight, then compares it with a reference within the two bounds.
"""

import numpy as np
from scipy.linalg import null_space
from scipy.special import expit, logsumexp, softmax


def logistic_proba_bound(X, targets, alpha, coef, intercept):
    """A bound on how far the probabilities of ``(coef, intercept)`` on the rows
    of ``X`` are from those of the minimiser of

        sum_i sum_c -targets[i, c] log p_ic + alpha / 2 ||coef||^2

    (intercepts unpenalised). ``targets`` (n, C) holds weighted one-hot labels
    or soft targets; ``coef`` is (C, d), or (1, d) for a binary problem, whose
    one logit is the second class's against a zero first.
    """
    X1, grad, hessian, basis = _derivatives(X, targets, alpha, coef, intercept)
    mu = np.linalg.eigvalsh(basis.T @ hessian @ basis).min() / 2
    distance = np.linalg.norm(basis.T @ grad.ravel()) / mu
    # a softmax moves no probability by more than half its logits' largest change
    return 0.5 * np.linalg.norm(X1, axis=1).max() * distance


def scaled_gradient(X, targets, alpha, coef, intercept):
    """The largest entry of that objective's gradient over the total weight of
    ``targets``: what the solvers' stopping rules (``tol``) bound."""
    grad = _derivatives(X, targets, alpha, coef, intercept)[1]
    return np.abs(grad).max() / targets.sum()


def gradient_floor(X, targets, alpha, coef, intercept):
    """The scaled gradient under which a solver that compares values of the
    scaled objective f can no longer lower it: a step against gradient g
    gains at most |g|^2 / (2 L) (L the Hessian's largest eigenvalue), and f,
    a sum of n terms, is known to about n eps |f|. L-BFGS stops there (its
    line search, or its relative-decrease test), whatever its ``tol``."""
    _, _, hessian, _ = _derivatives(X, targets, alpha, coef, intercept)
    scale = targets.sum()
    largest = np.linalg.eigvalsh(hessian / scale).max()
    value = _objective(X, targets, alpha, coef, intercept) / scale
    return np.sqrt(2 * largest * len(X) * np.finfo(float).eps * max(abs(value), 1.0))


def _objective(X, targets, alpha, coef, intercept):
    logits = X @ np.asarray(coef).T + intercept
    if logits.shape[1] == 1:
        logits = np.column_stack([np.zeros(len(X)), logits])
    log_proba = logits - logsumexp(logits, axis=1, keepdims=True)
    return -(targets * log_proba).sum() + 0.5 * alpha * np.sum(np.square(coef))


def _derivatives(X, targets, alpha, coef, intercept):
    X1 = np.column_stack([X, np.ones(len(X))])
    theta = np.column_stack([coef, intercept])
    penalised = np.r_[np.ones(X.shape[1]), 0.0]
    logits = X1 @ theta.T
    row_weight = targets.sum(axis=1)
    if theta.shape[0] == 1:
        p = expit(logits[:, 0])
        residual = (row_weight * p - targets[:, 1])[:, None]
        hessian = (X1 * (row_weight * p * (1 - p))[:, None]).T @ X1
        flat = np.zeros((0, X1.shape[1]))
    else:
        P = softmax(logits, axis=1)
        residual = row_weight[:, None] * P - targets
        n_classes = theta.shape[0]
        hessian = np.zeros((n_classes, X1.shape[1], n_classes, X1.shape[1]))
        for a in range(n_classes):
            for b in range(n_classes):
                w = row_weight * P[:, a] * ((a == b) - P[:, b])
                hessian[a, :, b, :] = (X1 * w[:, None]).T @ X1
        hessian = hessian.reshape(theta.size, theta.size)
        flat = np.kron(np.ones(n_classes), np.r_[np.zeros(X.shape[1]), 1.0])[None]
    grad = residual.T @ X1 + alpha * theta * penalised
    hessian += alpha * np.diag(np.tile(penalised, theta.shape[0]))
    basis = null_space(flat) if flat.size else np.eye(theta.size)
    return X1, grad, hessian, basis
