"""Row-wise log-space arithmetic over a short last axis (experts or classes).

NumPy reduces a short trailing axis (K experts, C classes) an order of magnitude
slower than a long one, and these reductions run in every EM iteration. Summing
through a matrix product and taking maxima over a loop of K columns keeps them
at memory speed. Each function works on NumPy and CuPy arrays alike.
"""

from ._backend import get_namespace

# exp() of arguments under about -708 gives subnormal numbers or underflows, and
# the CPU computes with those 5-35x slower than with normal numbers; so do the
# products of tiny probabilities and weights downstream. A log-probability under
# this floor is exponentiated as if it were at it: the result moves by < 1e-217,
# and products with weights down to 1e-90 stay normal.
_LOG_FLOOR = -500.0


def row_max(a):
    """``a.max(axis=-1)``, fast for a short last axis."""
    xp = get_namespace(a)
    out = a[..., 0].copy()
    for j in range(1, a.shape[-1]):
        xp.maximum(out, a[..., j], out=out)
    return out


def row_sum(a):
    """``a.sum(axis=-1)``, fast for a short last axis."""
    return a @ get_namespace(a).ones(a.shape[-1], dtype=a.dtype)


def exp_floored(a, out=None):
    """``exp(a)`` of log-probabilities, with arguments raised to at least -500.

    ``-inf`` (an expert a sparse gate did not select) still gives exactly 0.
    """
    xp = get_namespace(a)
    zero = a == -xp.inf
    result = xp.exp(xp.maximum(a, _LOG_FLOOR, out=out), out=out)
    result[zero] = 0.0
    return result


def logsumexp_rows(a):
    """``log(sum(exp(a), axis=-1))`` without overflow."""
    xp = get_namespace(a)
    top = row_max(a)
    infinite = ~xp.isfinite(top)
    shift = xp.where(infinite, 0.0, top)  # no inf - inf
    out = xp.log(row_sum(exp_floored(a - shift[..., None]))) + shift
    out[infinite] = top[infinite]  # a row of -inf sums to 0: its log is -inf
    return out


def log_softmax_rows(a):
    """``a - logsumexp(a)`` along the last axis."""
    return a - logsumexp_rows(a)[..., None]


def softmax_cross_entropy(logits, targets):
    """Cross-entropy of softmax(logits) against non-negative soft targets.

    Parameters
    ----------
    logits : ndarray of shape (..., m)
    targets : ndarray of the same shape
        Weighted targets: ``targets[i].sum()`` is the weight of row ``i``.

    Returns
    -------
    loss : float
        ``-sum(targets * log_softmax(logits))``.
    grad : ndarray of the shape of ``logits``
        Derivative of ``loss`` with respect to ``logits``.
    proba : ndarray of the shape of ``logits``
        ``softmax(logits)``.
    """
    log_p = log_softmax_rows(logits)
    loss = -get_namespace(log_p).vdot(targets, log_p)
    proba = exp_floored(log_p, out=log_p)
    grad = proba * row_sum(targets)[..., None]
    grad -= targets
    return loss, grad, proba
