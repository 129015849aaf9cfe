"""Truncated Newton steps for penalised linear models on logits.

The gate (a multinomial logistic model of soft targets) and the built-in logistic
experts (K weighted logistic regressions solved as one problem) share one shape:
minimise ``loss(X @ coef + intercept) + alpha / 2 * ||coef||^2``. This module holds
their steps (conjugate gradients on Hessian-vector products, a backtracking line
search) and the gate's solver; the losses on logits live beside it and in ``_math``.

On CuPy input the products and losses run on the device; the small state (the
preconditioner's blocks and their factors) is formed on the host.
"""

from functools import cache

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from threadpoolctl import ThreadpoolController

from ._backend import expit, get_namespace, to_numpy
from ._backend._cross_entropy import class_softmax_hessian_product
from ._backend._products import transposed_product
from ._math import exp_floored, log_softmax_rows, row_sum, vdot


@cache
def _threadpool_controller():
    """The products of the solvers here are thin (n x d times d x m) and
    alternate with element-wise work; a multi-threaded BLAS gains nothing on
    them, and its spinning workers slow the element-wise work several-fold
    (as KMeans, scikit-learn limits BLAS to one thread around such loops).
    The k-means start limits OpenMP by it too (see
    :func:`skmoe._em.kmeans_labels`). One controller, of the libraries
    loaded when it is first made: NumPy's and SciPy's BLAS, and
    scikit-learn's OpenMP, which ``import skmoe`` loads."""
    return ThreadpoolController()


def sigmoid_cross_entropy(logits, positive, weights):
    """Weighted binary cross-entropy of sigmoid(logits).

    ``positive`` is a boolean array broadcastable to ``logits``; ``weights`` has the
    shape of ``logits``. Returns the loss and its derivative with respect to logits.
    """
    # -log sigmoid(z) = log(1 + exp(-z)); -log(1 - sigmoid(z)) = log(1 + exp(z));
    # summed in float64 for float32 rows, whose sums L-BFGS's line search compares
    xp = get_namespace(logits)
    loss = vdot(weights, xp.logaddexp(0.0, logits) - positive * logits)
    grad = weights * (expit(logits) - positive)
    return loss, grad


def fit_softmax_newton(
    design,
    logit_loss,
    row_weight,
    coef,
    intercept,
    *,
    alpha,
    max_iter,
    tol,
    loss_terms=None,
    evidence=False,
):
    """Minimise ``logit_loss(Z @ coef + intercept) + alpha/2 ||coef||^2`` for a
    softmax gate on the rows ``Z`` of a :class:`~skmoe._design.Design`, by
    truncated Newton steps with a backtracking line search.

    ``logit_loss(logits)`` returns ``(value, grad, proba)``: a soft-target
    softmax cross-entropy with rows weighted by ``row_weight``, possibly plus
    other terms. ``loss_terms``, if given, is the plain cross-entropy's
    value and gradients by one fused kernel (see
    :func:`~skmoe._backend._cross_entropy.softmax_loss_terms`), used in its place.
    The Hessian is the cross-entropy's; for the other terms the
    step is a quasi-Newton one, which the line search still guards. Newton
    steps land far closer to the optimum than L-BFGS steps where the gate must
    grow sharp (near-separable regimes). Every accepted step lowers the
    objective, so EM stays monotone. ``Z`` is dense or sparse.

    The Hessian is never formed (K(K+1)/2 products of n x (d+1)^2, O(n K^2
    d^2): at K=8, d=23 a Newton step on it cost 2.5x a truncated one).
    Conjugate gradients find each step from Hessian-vector products, two thin
    products each, O(n K d), as scikit-learn's ``newton-cg`` does, and are
    preconditioned by the Hessian's diagonal blocks, one (d+1) x (d+1)
    inverse per expert, O(n K d^2) (one product with the design's outer
    products where it has them), refreshed every few steps and applied to
    all experts in one batched product on the host, where the conjugate
    gradients keep their small vectors (see :func:`conjugate_gradient`). Within an
    expert's block the curvature is exact and the experts couple only
    through their shared rows, so a few iterations suffice. (Böhning's
    bound, ``1/2 I kron Z1' R Z1``, one factor for all experts, is far
    looser where gates are sharp: EM took 1.7-2.2x the time with it.) On
    millions of rows both take the curvature from a sample of the rows
    (see :attr:`~skmoe._design.Design.curvature`); the gradient and the line
    search always see every row.

    With ``evidence=True`` the penalty is first moved by one step of
    :func:`evidence_alpha` from the coefficients given, using the blocks
    the first Newton step needs anyway. Returns the coefficients, the
    intercepts and the penalty used.
    """
    xp = get_namespace(design.Z)
    scale = float(row_weight.sum())
    theta = xp.vstack([coef, intercept])  # (n_params, n_experts)
    curvature, rows, share = _weighted_sample(design, design.curvature, row_weight, scale)
    # the sample's Hessian over its share of the weight estimates the full one
    sample_weight, sample_scale = row_weight[rows], share * scale
    # and the blocks come from a sample of the sample, likewise
    blocks_design, block_rows, block_share = _weighted_sample(
        curvature, curvature.block_rows, sample_weight, sample_scale
    )
    block_weight = sample_weight[block_rows]

    def penalties(alpha):
        """The penalty per coordinate: on the host, on Z's device, and the
        latter scaled to the curvature's sample."""
        penalty = intercept_free_penalty(design.Z.shape[1], alpha)
        device_penalty = xp.asarray(penalty, dtype=design.Z.dtype)[:, None]
        return penalty, device_penalty, share * device_penalty

    def block_grams(proba):
        """The blocks of the cross-entropy's Hessian at ``proba`` (the
        curvature sample's), estimated for all rows."""
        weights = block_weight[:, None] * proba[block_rows] * (1 - proba[block_rows])
        return blocks_design.grams(weights) / (block_share * share)

    penalty, device_penalty, device_sample_penalty = penalties(alpha)

    def value_grad(theta):
        """The objective, its gradient and the gate's probabilities on the
        curvature's rows (None where the fused kernel gives none)."""
        penalised = device_penalty * theta
        if loss_terms is not None:
            # the gradients of coef (row-major) and intercept: theta's layout
            terms = loss_terms(theta[:-1], theta[-1])
            value, proba = terms[0], None
            gradient = terms[1:].reshape(theta.shape).astype(theta.dtype)
        else:
            value, gradient, proba = logit_loss(design.Z1 @ theta)
            gradient, proba = transposed_product(design.Z1, gradient), proba[rows]
        value = float(value + 0.5 * xp.vdot(penalised, theta)) / scale
        return value, (gradient + penalised) / scale, proba

    with _threadpool_controller().limit(limits=1, user_api="blas"):
        value, grad, proba = value_grad(theta)
        grams = None  # the evidence's blocks, which serve the first Newton step
        if evidence and max_iter > 0:
            proba = _curvature_proba(proba, curvature, theta)
            grams = block_grams(proba)
            pattern = intercept_free_penalty(design.Z.shape[1], 1.0)
            old, alpha = alpha, evidence_alpha(grams, theta, alpha, pattern)
            # the objective and its gradient under the new penalty
            penalty, device_penalty, device_sample_penalty = penalties(alpha)
            change = (alpha - old) / scale
            value += 0.5 * change * float(xp.vdot(theta[:-1], theta[:-1]))
            grad = grad + change * xp.vstack([theta[:-1], xp.zeros_like(theta[-1:])])
        for n_iter in range(max_iter):
            if float(xp.max(xp.abs(grad))) <= tol:
                break
            proba = _curvature_proba(proba, curvature, theta)
            if n_iter % _PRECONDITIONER_EVERY == 0:
                grams = block_grams(proba) if grams is None else grams
                blocks = _block_factors(grams, penalty, scale)
                grams = None
            step = _newton_cg_step(
                curvature,
                proba,
                sample_weight,
                device_sample_penalty,
                sample_scale,
                grad,
                blocks,
            )
            new = backtrack(value_grad, theta, value, grad, step)
            if new is None:
                break  # no decrease left at working precision
            theta, (value, grad, proba) = new
    return theta[:-1].copy(), theta[-1].copy(), alpha


def _curvature_proba(proba, curvature, theta):
    """The gate's probabilities on the curvature's rows: ``proba`` where
    the loss gave them, else computed."""
    return exp_floored(log_softmax_rows(curvature.Z1 @ theta)) if proba is None else proba


def _weighted_sample(design, sample, row_weight, scale):
    """``sample``, a strided sample of ``design``'s rows (see
    :attr:`~skmoe._design.Design.curvature`), with its row index and its
    share of the weight: the sample's Hessian divided by it estimates the
    full one, so its penalty and scale are the full ones times it. All rows
    where the sample carries no weight."""
    sampled, rows = sample
    if sampled is design:
        return design, rows, 1.0
    share = float(row_weight[rows].sum()) / scale
    return (sampled, rows, share) if share > 0 else (design, slice(None), 1.0)


def backtrack(value_grad, theta, value, grad, step):
    """``(theta - t * step, value_grad(theta - t * step))`` for the first
    step length ``t``, from 1 down, that lowers the objective enough
    (Armijo's rule); None when 30 tries fail.

    Each failed try shrinks ``t`` to the minimiser of the quadratic through
    the objective at 0, its slope there and its value at ``t``, kept within
    [t / 10, t / 2] (Nocedal and Wright, section 3.5): where the Newton
    step overshoots a sharp gate by far, that finds the length in a few
    tries where halving took up to 14.
    """
    xp = get_namespace(grad)
    slope = float(xp.vdot(grad, step))  # the objective falls at this rate along -step
    t = 1.0
    for _ in range(30):
        new = value_grad(theta - t * step)
        rise = new[0] - value + t * slope  # the objective's excess over its tangent
        if new[0] <= value - 1e-4 * t * slope:
            return theta - t * step, new
        shrunk = 0.5 * slope * t * t / rise if rise > 0 else 0.5 * t
        t = min(max(shrunk, 0.1 * t), 0.5 * t)
    return None


# The penalties a choice from the data may take, relative to the mean
# curvature per coefficient (for ridge experts, the mean eigenvalue of the
# centred Gram matrix: the features' weighted variance times their weight):
# from no shrinkage to far more than any feature's signal.
RELATIVE_ALPHA_RANGE = (1e-8, 1e2)


def intercept_free_penalty(n_features, alpha):
    """The ridge penalty per coordinate of ``[coef, intercept]``: ``alpha`` on
    each coefficient, 0 on the intercept, which is never penalised."""
    return np.append(np.full(n_features, float(alpha)), 0.0)


def conjugate_gradient(grad, hessian_times, precondition, max_iter=None):
    """An approximate solution of ``H step = grad`` by preconditioned
    conjugate gradients, ``H`` given by its products: at most ``max_iter``
    iterations (``_CG_MAX_ITER`` by default), stopped at a relative residual
    of ``_CG_RTOL``. Falls back to the preconditioned gradient where no
    direction of positive curvature is found.

    ``grad``, the products and the step are where the rows are; the
    iterations' vectors, a few hundred parameters, stay on the host, in
    ``grad``'s floating type, and ``precondition`` takes and gives host
    arrays. On the GPU an iteration is then one product and two small
    copies, where the same algebra on the device took a dozen launches of
    tiny kernels and three synchronisations to read its scalars.
    """
    xp = get_namespace(grad)
    grad = to_numpy(grad)

    def product(V):
        return to_numpy(hessian_times(xp.asarray(V))).astype(grad.dtype, copy=False)

    step = np.zeros_like(grad)
    residual = grad
    direction = precondition(residual)
    rz = float(np.vdot(residual, direction))
    stop = _CG_RTOL * float(np.linalg.norm(grad))
    for _ in range(_CG_MAX_ITER if max_iter is None else max_iter):
        change = product(direction)
        curvature = float(np.vdot(direction, change))
        # flat (a shift shared by all classes) up to rounding: scikit-learn's
        # newton-cg test. Its float64 epsilon even for float32 products: the
        # dtype's stopped sharp gates' steps early (R^2 0.993, not 0.9987, on
        # 10M rows of GPU float32)
        if curvature <= 16 * np.finfo(np.float64).eps * float(np.vdot(direction, direction)):
            break
        size = rz / curvature
        step = step + size * direction
        residual = residual - size * change
        if float(np.linalg.norm(residual)) <= stop:
            break
        preconditioned = precondition(residual)
        rz, previous = float(np.vdot(residual, preconditioned)), rz
        direction = preconditioned + (rz / previous) * direction
    return xp.asarray(step if np.any(step != 0) else precondition(grad))


# Newton steps between refreshes of the blocks (they need only stay close to
# the Hessian's; the line search guards each step); the
# conjugate-gradient iterations per step, and the relative residual at which
# they stop: a step need not be exact, only much better than the gradient's
# (tighter solves, rtol 0.01 in 25 iterations, took EM as many iterations and
# 1.2-1.3x the time).
_PRECONDITIONER_EVERY = 3
_CG_MAX_ITER = 10
_CG_RTOL = 0.1


def _block_factors(grams, penalty, scale):
    """Inverses of the gate Hessian's diagonal blocks, one per expert,
    ``(grams[k] + diag(penalty)) / scale``, as one float64 host array of
    shape (K, d + 1, d + 1), where the conjugate gradients apply them."""
    identity = np.eye(len(penalty))
    inverses = [
        scipy.linalg.cho_solve(_damped_cholesky((gram + np.diag(penalty)) / scale), identity)
        for gram in grams
    ]
    return np.stack(inverses)


def evidence_alpha(grams, theta, alpha, pattern, fixed=0.0):
    """One step of MacKay's (1992) fixed point for a penalty ``alpha``:
    ``gamma / theta' S theta``, the penalty at which the Laplace
    approximation of the evidence (the likelihood with the coefficients
    integrated out under their Gaussian prior) is stationary.

    ``theta`` (p, m) holds m sets of coefficients (a gate's experts, or an
    expert's classes) that share ``alpha``, penalised by ``alpha * pattern
    + fixed`` per coordinate (``pattern`` S is 0 on the intercept; a
    ``fixed`` part holds coordinates that ``alpha`` does not move).
    ``gamma = m P - alpha sum_j tr((G_j + diag(alpha S + fixed))^-1 S)``,
    with P the coordinates S penalises, counts the coefficients that the
    rows determine, from the blocks ``grams`` (m, p, p) of the loss's
    Hessian, one per set (the Hessian taken as block-diagonal, as the
    preconditioners take it). ``alpha`` as it is where the coefficients are
    all 0 (not fitted yet) or no row has weight.
    """
    theta = np.asarray(to_numpy(theta), dtype=np.float64)
    norm = float(np.sum(pattern[:, None] * theta**2))
    penalised = pattern > 0
    # the rows' curvature per coefficient, on the penalty's scale
    curvature = np.mean([np.diag(g)[penalised] / pattern[penalised] for g in grams])
    if norm == 0 or curvature == 0:
        return alpha
    penalty = np.diag(alpha * pattern + fixed)
    unresolved = sum(
        np.trace(scipy.linalg.cho_solve(_damped_cholesky(g + penalty), np.diag(pattern)))
        for g in grams
    )
    gamma = max(len(grams) * int(penalised.sum()) - alpha * unresolved, 0.0)
    # no signal would take alpha to infinity and the coefficients to 0,
    # from which EM could not return
    return float(np.clip(gamma / norm, *(curvature * np.array(RELATIVE_ALPHA_RANGE))))


def _newton_cg_step(design, proba, row_weight, penalty, scale, grad, blocks):
    """An approximate solution of ``H step = grad`` by conjugate gradients
    preconditioned by ``blocks``, H the gate's Hessian on the rows of
    ``design`` applied as products: on the GPU by one tiled kernel each
    (the logistic experts', for one softmax), else from array operations."""
    fused = class_softmax_hessian_product(design.Z, row_weight[:, None], proba[:, None, :])
    if fused is not None:

        def curvature_times(V):
            return fused(V).astype(V.dtype)

    else:
        Z1, weighted = design.Z1, proba * row_weight[:, None]

        def curvature_times(V):
            # R (diag(p) - p p') applied to each row's change of logits, in place
            change = Z1 @ V
            change *= weighted
            change -= proba * row_sum(change)[:, None]
            # one product, not transposed_product's slices: the product steers
            # the step, which the line search checks, and needs no more digits
            return Z1.T @ change

    def hessian_times(V):
        return (curvature_times(V) + penalty * V) / scale

    def precondition(R):
        # all experts' blocks in one batched product, on the host as R
        return np.einsum("kij,jk->ik", blocks, R.astype(blocks.dtype)).astype(R.dtype)

    return conjugate_gradient(grad, hessian_times, precondition)


def _damped_cholesky(hessian):
    """Cholesky factor of ``hessian`` plus the least damping that makes it
    positive definite.

    Softmax is blind to a shift shared by all experts, so the Hessian is
    singular along that direction; float32 products round it to slightly
    indefinite. The damping starts far below the Hessian's scale and grows
    until the factorisation succeeds; the line search guards the step.
    """
    size = np.trace(hessian) / len(hessian) or 1.0
    for exponent in range(-10, 1, 2):
        try:
            return scipy.linalg.cho_factor(hessian + 10.0**exponent * size * np.eye(len(hessian)))
        except np.linalg.LinAlgError:
            continue
    raise np.linalg.LinAlgError("the gate's Hessian is not positive semi-definite.")


def _softmax_hessian(Z1, proba, row_weight):
    """Hessian of the weighted softmax cross-entropy, blocks ordered by expert
    (for the online gate, whose expansions keep it)."""
    xp = get_namespace(Z1)
    n_experts, n_params = proba.shape[1], Z1.shape[1]
    hessian = xp.empty((n_experts, n_params, n_experts, n_params), dtype=Z1.dtype)
    weighted = proba * row_weight[:, None]
    for k in range(n_experts):
        for j in range(k, n_experts):
            c = (weighted[:, k] * ((k == j) - proba[:, j]))[:, None]
            scaled = sp.csr_matrix(Z1.multiply(c)) if sp.issparse(Z1) else Z1 * c
            block = transposed_product(Z1, scaled)
            block = block.toarray() if sp.issparse(block) else block
            hessian[k, :, j, :] = block
            hessian[j, :, k, :] = block.T
    return hessian.reshape(n_experts * n_params, n_experts * n_params)
