"""K weighted logistic regressions solved as one problem: the default classifier experts."""

from collections.abc import Callable
from functools import partial
from typing import NamedTuple

import numpy as np
import scipy.linalg
from sklearn.linear_model import LogisticRegression
from sklearn.utils.extmath import safe_sparse_dot

from .._backend import expit, get_namespace, is_cupy_array, to_numpy
from .._backend._cross_entropy import class_softmax_hessian_product, class_softmax_loss_terms
from .._backend._products import affine, column_sum, transposed_product
from .._math import exp_floored, log_softmax_rows, row_sum, softmax_cross_entropy, softmax_rows
from .._optim import (
    _damped_cholesky,
    _threadpool_controller,
    backtrack,
    conjugate_gradient,
    evidence_alpha,
    intercept_free_penalty,
    sigmoid_cross_entropy,
)
from ._linear import _normal_equations, _weighted_gram, design_matrix


def _log_loss(y, weights, n_outputs):
    """``logits -> (loss, grad, proba)`` of the experts' weighted log-loss on
    logits of shape (n_samples, n_experts, n_outputs): its value, its
    derivative with respect to the logits and the experts' probabilities (of
    class 1 for a sigmoid)."""
    if n_outputs == 1:
        positive = (y == 1)[:, None, None]
        row_weight = weights[:, :, None]

        def loss(logits):
            value, grad = sigmoid_cross_entropy(logits, positive, row_weight)
            return value, grad, expit(logits)

        return loss
    xp = get_namespace(weights)
    targets = weights[:, :, None] * (y[:, None, None] == xp.arange(n_outputs))

    def loss(logits):
        # as (n K, m): rows of classes, which the GPU's fused kernel takes
        value, grad, proba = softmax_cross_entropy(
            logits.reshape(-1, n_outputs), targets.reshape(-1, n_outputs)
        )
        return value, grad.reshape(logits.shape), proba.reshape(logits.shape)

    return loss


def _fused_log_loss(Z, y, weights, n_outputs):
    """``theta -> (loss, grad)`` of the multinomial experts' weighted
    log-loss on the rows ``[Z, 1]`` at parameters ``theta`` (d + 1, K m), by
    one tiled kernel that never writes the (n, K, m) logits (see
    :func:`~skmoe._backend._cross_entropy.class_softmax_loss_terms`); None
    where it does not apply: without ``Z`` (see :class:`_Frame`), for
    sigmoid experts, or beyond the kernel's sizes."""
    if Z is None or n_outputs == 1:
        return None
    terms = class_softmax_loss_terms(Z, y, weights, n_outputs)
    if terms is None:
        return None

    def loss(theta, gradient=True):
        packed = terms(theta[:-1], theta[-1], gradient)  # its gradient's layout is theta's
        return float(packed[0]), packed[1:].reshape(theta.shape) if gradient else None

    return loss


def _probabilities(logits):
    """The experts' probabilities from their logits (n, K, m): of class 1
    for a sigmoid (m = 1), else each expert's softmax."""
    if logits.shape[-1] == 1:
        return expit(logits)
    return softmax_rows(logits.reshape(-1, logits.shape[-1])).reshape(logits.shape)


def _hessian_product(rows, features, proba, weights):
    """``V -> rows' H (rows V)``, float64: the log-loss's Hessian in the
    parameters at the experts' probabilities ``proba`` (n, K, m) and row
    weights ``weights`` (n, K), times a change ``V`` (d + 1, K m) of them;
    by one tiled kernel on ``features`` (the rows without their column of
    ones) for multinomial experts where it applies, else from library calls
    on ``rows``."""
    K, m = proba.shape[1:]
    fused = None
    if features is not None and m > 1:
        fused = class_softmax_hessian_product(features, weights, proba)
    if fused is not None:
        return fused
    curvature = _curvature(proba, weights)

    def product(V):
        change = safe_sparse_dot(rows, V.astype(rows.dtype)).reshape(-1, K, m)
        return transposed_product(rows, curvature(change).reshape(-1, K * m)).astype(np.float64)

    return product


def _curvature(proba, weights):
    """``change -> H change``: the log-loss's Hessian in the logits, at the
    experts' probabilities ``proba`` (n, K, m; of class 1 for a sigmoid,
    m = 1) and row weights ``weights`` (n, K), applied to a change of the
    logits, row by row."""
    weighted = weights[:, :, None] * proba
    if proba.shape[-1] == 1:
        curvature = weighted * (1 - proba)
        return lambda change: curvature * change
    # w (diag(p) - p p') applied to each row's change, per expert
    return lambda change: weighted * (change - row_sum(proba * change)[..., None])


def _sample_shares(weights, rows):
    """Each expert's share of its weight that the sampled ``rows`` carry
    (K,): an expert's Hessian over its sampled rows, divided by it,
    estimates the one over all rows (see
    :attr:`skmoe._design.Design.curvature`). None where the sample is all
    rows, or where it misses every row of an expert that has weight, for
    which it cannot stand: all rows serve then."""
    if rows == slice(None):
        return None
    xp = get_namespace(weights)
    sampled, total = column_sum(weights[rows]), column_sum(weights)
    if bool(xp.any((sampled == 0) & (total > 0))):
        return None
    return xp.where(total > 0, sampled / xp.where(total > 0, total, 1.0), 1.0).astype(np.float64)


class _Frame(NamedTuple):
    """The coordinates in which the experts solve: the rows ``x1``, the
    experts' weighted Gram matrices, ``penalty(alpha)`` per coordinate,
    ``grams(W)`` for any weights, maps of parameters ``theta`` (..., d + 1)
    from and to X's coefficients and intercepts, ``curvature``, the
    rows on which Newton steps take the Hessian and their index into
    ``rows`` (None and all rows: ``rows`` itself), and ``features``: the
    rows and the curvature's rows without their column of ones, where the
    fused kernels take them (on the GPU), else None."""

    rows: object
    gram: np.ndarray
    penalty: Callable
    grams: Callable
    from_original: Callable
    to_original: Callable
    curvature: tuple = (None, slice(None))
    features: object = None


def _centred_frame(X, weights):
    """:class:`_Frame` of ``x1 = [x - offset, 1]`` (offset the column
    centres of dense X, 0 for sparse), where the experts solve without a
    design."""
    offset, gram, _ = _normal_equations(X, None, weights)

    def from_original(coef, intercept):
        coef = np.asarray(coef, dtype=np.float64)
        return np.concatenate([coef, (intercept + coef @ offset)[..., None]], axis=-1)

    def to_original(theta):
        return theta[..., :-1], theta[..., -1] - theta[..., :-1] @ offset

    return _Frame(
        design_matrix(X, offset),
        gram,
        partial(intercept_free_penalty, X.shape[1]),
        lambda W: _normal_equations(X, None, W, offset)[1],
        from_original,
        to_original,
    )


def _frame(X, weights, design):
    """:class:`_Frame` in the standardised coordinates of ``design`` where
    it solves the experts (see :attr:`skmoe._design.Design.solves_experts`)
    or holds the rows on the GPU (whose ``[Z, 1]`` it keeps for the whole
    fit, and whose Gram matrices one kernel forms in float64), else in
    centred ones."""
    on_device = design is not None and design.scaler is not None and is_cupy_array(design.Z)
    if not (on_device or (design is not None and design.solves_experts)):
        return _centred_frame(X, weights)
    sample, rows = design.curvature
    return _Frame(
        design.Z1,
        _block_grams(design, weights),
        design.ridge_penalty,
        design.grams,
        design.from_original,
        design.to_original,
        (sample.Z1, rows),
        (design.Z, sample.Z) if on_device else None,
    )


# The penalty of alpha="auto" for experts with no coefficients yet: the
# estimators' numeric default.
_AUTO_START = 1.0

# Conjugate-gradient iterations per Newton step. Böhning's bound is close to
# the experts' Hessian (their class probabilities are rarely sharp), so the
# first iterations hold most of the step: with 3 instead of the gate's 10, EM
# reached the same optimum of regime classification in 0.78x the time (EM to
# tol 1e-5), and at default settings fits took 0.55-0.9x the time with
# accuracies within -0.002 to +0.006 over 5-fold CV of seven sets
# (benchmarks/results/cpu_notes.md). One iteration (the bound's step alone)
# let EM settle in a worse optimum.
_CG_ITER = 3


def _block_grams(design, weights):
    """The experts' weighted Gram matrices of ``design``'s rows, for the
    bounds that precondition their steps: on millions of rows from the
    sample that the gate's blocks come from (see
    :attr:`skmoe._design.Design.block_rows`), each expert's over its share
    of its weight, as :func:`_sample_shares` estimates its Hessian."""
    blocks, rows = design.block_rows
    shares = _sample_shares(weights, rows)
    if shares is None:
        return design.grams(weights)
    return blocks.grams(weights[rows]) / to_numpy(shares)[:, None, None]


class LogisticExperts:
    """``n_experts`` L2-penalised logistic regressions with their own row weights.

    Expert ``k`` minimises ``sum_i w_ik * log_loss_i + alpha / 2 * ||coef_k||^2``, the
    objective of ``LogisticRegression(C=1 / alpha)`` with ``sample_weight=w[:, k]``:
    a sigmoid model for two classes, a multinomial one for more. The K problems
    are separable and solved together, by truncated Newton steps (see
    :meth:`fit`); every
    refit warm-starts from the previous solution. The products run in X's
    floating type, and the coefficients are stored in it (as
    LogisticRegression's).

    ``alpha="auto"`` gives each expert its own penalty: each fit first moves
    it one step of MacKay's evidence fixed point from the coefficients the
    fit starts from (see :meth:`_alphas`), so that over EM's M-steps it
    settles with them. ``alpha_`` holds the penalties of the last fit.
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

    def fit(self, X, y, weights, random_state=None, design=None):
        """Refit every expert; ``y`` holds class indices, ``weights`` (n, K).

        Truncated Newton steps (as scikit-learn's ``newton-cg``): conjugate
        gradients find each step from Hessian-vector products, two thin
        products over the rows, O(n K C d), never forming the Hessian. They
        are preconditioned by Böhning's bound on it (Böhning 1992,
        "Multinomial logistic regression algorithm"): the log-loss's Hessian
        is at most ``1/2 I`` (``1/4`` for a sigmoid) times ``X1' diag(w_k) X1``
        per class, which does not depend on the parameters, so each expert's
        bound has one Cholesky factor per fit. A backtracking line search
        makes every step lower the objective, so EM stays monotone. Three
        conjugate-gradient iterations per step: the bound leaves little for
        more to find. At most
        ``max_iter`` steps, until the largest gradient entry of the
        objective per unit weight is under ``tol``. With a ``design`` of X's
        standardised rows that solves the experts (see
        :attr:`skmoe._design.Design.solves_experts`), or that holds them on
        the GPU, the steps are taken in its coordinates; there, on millions
        of rows, the Hessian's products and the bounds come from samples of
        the rows, as the gate's do (the gradient and the line search see
        every row).
        """
        K, m = self.n_experts, self._n_outputs
        n, d = X.shape
        xp = get_namespace(X)
        if not hasattr(self, "coef_"):
            self.coef_ = xp.zeros((K, m, d), dtype=X.dtype)
            self.intercept_ = xp.zeros((K, m), dtype=X.dtype)
        # the parameters as (d + 1, K * m), so that all logits are one
        # product; the small arrays formed on the host, as the gate's
        frame = _frame(X, weights, design)
        X1 = frame.rows
        start = frame.from_original(to_numpy(self.coef_), to_numpy(self.intercept_))
        theta = start.reshape(K * m, d + 1).T.copy()
        self.alpha_ = self._alphas(frame, theta, weights)
        # each expert's penalty per coordinate, in theta's columns
        penalty = np.repeat(np.stack([frame.penalty(a) for a in self.alpha_], axis=1), m, axis=1)
        curvature = 0.25 if m == 1 else 0.5
        # the bounds' inverses, (K, d + 1, d + 1), applied to all experts in one
        # product; an expert with no rows has only the penalty: damped, as the gate's
        inverse = np.stack(
            [
                scipy.linalg.cho_solve(
                    _damped_cholesky(curvature * g + np.diag(penalty[:, k * m])), np.eye(d + 1)
                )
                for k, g in enumerate(frame.gram)
            ]
        )
        theta, penalty = xp.asarray(theta), xp.asarray(penalty)
        features, sample_features = frame.features or (None, None)
        fused = _fused_log_loss(features, y, weights, m)
        loss = _log_loss(y, weights, m) if fused is None else None
        # the Hessian's products from a sample of the rows on millions of
        # them, as the gate's (see skmoe._design.Design.curvature); the
        # gradient and the line search see every row
        sample, rows = frame.curvature
        shares = _sample_shares(weights, rows)
        if shares is None:
            sample, rows, sample_features = X1, slice(None), features
        else:  # per column of theta
            shares = xp.repeat(shares, m)[None, :]
        sample_weights = weights[rows]

        def logits(rows, theta):
            return safe_sparse_dot(rows, theta.astype(X.dtype)).reshape(-1, K, m)

        def value_grad(theta, gradient=True):
            # the probabilities too where the loss forms them, for the curvature
            if fused is not None:
                (value, grad), proba = fused(theta, gradient), None
            else:
                value, grad, proba = loss(logits(X1, theta))
                if gradient:
                    grad = transposed_product(X1, grad.reshape(n, K * m)).astype(np.float64)
            value = float(value) + 0.5 * float(xp.vdot(penalty * theta, theta))
            return value, grad + penalty * theta if gradient else None, proba

        def hessian_times(product, V):
            product = product(V)
            return (product if shares is None else product / shares) + penalty * V

        def precondition(R):
            # on the host, where the conjugate gradients keep their vectors
            return np.einsum("kij,jkc->ikc", inverse, R.reshape(d + 1, K, m)).reshape(R.shape)

        scale = max(float(weights.sum()), np.finfo(float).tiny)
        # float32 logits hold about 7 digits: below that the steps chase rounding
        tol = max(self.tol, 10 * np.finfo(X.dtype).eps) * scale
        value, grad, proba = value_grad(theta)
        with _threadpool_controller().limit(limits=1, user_api="blas"):
            for step_index in range(self.max_iter):
                if float(xp.max(xp.abs(grad))) <= tol:
                    break
                # on the sampled rows, formed there where the loss keeps none
                at = proba[rows] if proba is not None else _probabilities(logits(sample, theta))
                product = _hessian_product(sample, sample_features, at, sample_weights)
                step = conjugate_gradient(
                    grad, partial(hessian_times, product), precondition, max_iter=_CG_ITER
                )
                # no step follows the last: its line search forms the loss alone
                last = step_index == self.max_iter - 1
                new = backtrack(partial(value_grad, gradient=not last), theta, value, grad, step)
                if new is None:
                    break  # no decrease left at working precision
                theta, (value, grad, proba) = new
        coef, intercept = frame.to_original(to_numpy(theta).T.reshape(K, m, d + 1))
        if m > 1:  # the shift all classes share is free: keep it centred
            intercept -= intercept.mean(axis=1, keepdims=True)
        # the coefficients go where X is, as the linear experts'
        self.coef_, self.intercept_ = (xp.asarray(a, dtype=X.dtype) for a in (coef, intercept))
        return self

    def _alphas(self, frame, theta, weights):
        """Each expert's penalty for this fit: ``alpha``, or for "auto" one
        step of the evidence fixed point (see :func:`skmoe._optim.evidence_alpha`)
        from the coefficients ``theta`` the fit starts from, with each
        class's block of the log-loss's Hessian."""
        K, m = self.n_experts, self._n_outputs
        alphas = self.current_alphas()
        if self.alpha != "auto" or not np.any(theta[:-1]):
            return alphas
        xp = get_namespace(weights)
        logits = safe_sparse_dot(frame.rows, xp.asarray(theta, dtype=frame.rows.dtype))
        proba = _probabilities(logits.reshape(len(weights), K, m))
        blocks = frame.grams((weights[:, :, None] * proba * (1 - proba)).reshape(-1, K * m))
        fixed = frame.penalty(0.0)
        pattern = frame.penalty(1.0) - fixed
        experts = [slice(k * m, (k + 1) * m) for k in range(K)]
        return np.array(
            [
                evidence_alpha(blocks[e], theta[:, e], a, pattern, fixed)
                for e, a in zip(experts, alphas, strict=True)
            ]
        )

    def current_alphas(self):
        """Each expert's penalty: ``alpha``, or for "auto" the last chosen
        (1.0 before any)."""
        if self.alpha == "auto":
            return getattr(self, "alpha_", np.full(self.n_experts, _AUTO_START))
        return np.full(self.n_experts, float(self.alpha))

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
        penalties = [np.tile(intercept_free_penalty(d1 - 1, a), m) for a in self.current_alphas()]
        # a softmax's Hessian is singular along the shift all its intercepts
        # share: damped, as the gate's, and the intercepts kept centred
        theta = np.array(
            [
                scipy.linalg.cho_solve(_damped_cholesky(h + np.diag(p)), r)
                for h, r, p in zip(hessian, rhs, penalties, strict=True)
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
        logits = affine(X, coef.reshape(K * m, -1).T, intercept.ravel()).reshape(-1, K, m)
        if m == 1:
            p1 = expit(logits)
            return get_namespace(p1).concatenate([1.0 - p1, p1], axis=2)
        return softmax_rows(logits.reshape(-1, m)).reshape(logits.shape)

    def squared_norms(self):
        """``||coef_k||^2`` per expert: the penalised quantity."""
        return get_namespace(self.coef_).einsum("kcj,kcj->k", self.coef_, self.coef_)

    def to_estimators(self):
        """One fitted :class:`~sklearn.linear_model.LogisticRegression` per expert."""
        estimators = []
        arrays = (to_numpy(self.coef_), to_numpy(self.intercept_), self.current_alphas())
        for coef, intercept, alpha in zip(*arrays, strict=True):
            logreg = LogisticRegression(C=1.0 / float(alpha) if alpha else np.inf)
            logreg.coef_, logreg.intercept_ = coef.copy(), intercept.copy()
            logreg.classes_ = np.arange(self.n_classes)
            logreg.n_features_in_ = coef.shape[1]
            logreg.n_iter_ = np.zeros(1, dtype=np.int32)
            estimators.append(logreg)
        return estimators
