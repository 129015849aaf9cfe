"""Row-wise log-space arithmetic over a short last axis (experts or classes).

NumPy reduces a short trailing axis (K experts, C classes) an order of magnitude
slower than a long one, and these reductions run in every EM iteration. Summing
through a matrix product and taking maxima over a loop of K columns keeps them
at memory speed. Each function works on NumPy and CuPy arrays alike.

Float32 arrays stay float32, but on the CPU their long sums (over rows) are
accumulated in float64: a float32 sum over millions of rows keeps few digits,
and the gate's gradient, a small difference of large sums, needs them.
"""

import numpy as np

from ._backend import get_namespace
from ._backend._cross_entropy import fused_softmax, fused_softmax_cross_entropy

# exp() of arguments under about -708 gives subnormal numbers or underflows, and
# the CPU computes with those 5-35x slower than with normal numbers; so do the
# products of tiny probabilities and weights downstream. A log-probability under
# this floor is exponentiated as if it were at it: the result moves by < 1e-217,
# and products with weights down to 1e-90 stay normal.
_LOG_FLOOR = -500.0
# float32's normal numbers end at exp(-87); at exp(-60) a result moves by
# < 1e-26 and products with weights down to 1e-12 stay normal.
_LOG_FLOOR_FLOAT32 = -60.0


def _float32_on_host(*dtypes):
    """Whether NumPy arithmetic on arrays of these dtypes runs in float32."""
    return np.result_type(*dtypes) == np.float32


def vdot(a, b):
    """``vdot(a, b)``; for float32 NumPy arrays the products are summed in
    float64 (a float32 sum of millions of terms keeps few digits)."""
    xp = get_namespace(a, b)
    if xp is not np or not _float32_on_host(a.dtype, b.dtype):
        return xp.vdot(a, b)
    return np.add.reduce(np.multiply(a, b).ravel(), dtype=np.float64)


def weighted_sum(weights, values):
    """``float(weights @ values)`` of two vectors over the rows, summed in
    float64 for float32 NumPy input (see :func:`vdot`)."""
    return float(vdot(weights, values))


def row_max(a):
    """``a.max(axis=-1)``, fast for a short last axis."""
    xp = get_namespace(a)
    out = a[..., 0].copy()
    for j in range(1, a.shape[-1]):
        xp.maximum(out, a[..., j], out=out)
    return out


def row_sum(a):
    """``a.sum(axis=-1)``, fast for a short last axis: a product with ones, as
    one matrix-vector product (NumPy's on a 3-D array is 6x slower, one small
    product per leading index)."""
    ones = get_namespace(a).ones(a.shape[-1], dtype=a.dtype)
    return (a.reshape(-1, a.shape[-1]) @ ones).reshape(a.shape[:-1])


def exp_floored(a, out=None):
    """``exp(a)`` of log-probabilities, with arguments raised to at least -500
    (-60 in float32).

    ``-inf`` (an expert a sparse gate did not select) still gives exactly 0.
    """
    xp = get_namespace(a)
    selected = a != -xp.inf
    floor = _LOG_FLOOR_FLOAT32 if a.dtype == np.float32 else _LOG_FLOOR
    result = xp.exp(xp.maximum(a, floor, out=out), out=out)
    result *= selected  # not a masked assignment: on the GPU that is a scan and a scatter
    return result


def logsumexp_rows(a):
    """``log(sum(exp(a), axis=-1))`` without overflow."""
    xp = get_namespace(a)
    top = row_max(a)
    infinite = ~xp.isfinite(top)
    shift = xp.where(infinite, 0.0, top)  # no inf - inf
    out = xp.log(row_sum(exp_floored(a - shift[..., None]))) + shift
    return xp.where(infinite, top, out)  # a row of -inf sums to 0: its log is -inf


def log_softmax_rows(a):
    """``a - logsumexp(a)`` along the last axis.

    In float32 the row's maximum is taken off first: ``logsumexp(a)`` rounds
    to a step of ``eps * |a|``, and with logits in the tens the probabilities
    summed to 1 only within 3e-6 (float64's 1e-14 rounding stays as it was).
    """
    if a.dtype != np.float32:
        return a - logsumexp_rows(a)[..., None]
    xp = get_namespace(a)
    top = row_max(a)
    shifted = a - xp.where(xp.isfinite(top), top, 0.0)[..., None]  # no inf - inf
    return shifted - xp.log(row_sum(exp_floored(shifted)))[..., None]


def softmax_rows(logits):
    """``exp_floored(log_softmax_rows(logits))`` of finite logits, 2-D: on
    the GPU one fused kernel (whose probabilities are not floored: the
    floor keeps the CPU from subnormal numbers)."""
    fused = fused_softmax(logits)
    return exp_floored(log_softmax_rows(logits)) if fused is None else fused


def softmax_cross_entropy(logits, targets):
    """Cross-entropy of softmax(logits) against non-negative soft targets.

    Parameters
    ----------
    logits : ndarray of shape (..., m)
        Finite.
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
    fused = fused_softmax_cross_entropy(logits, targets)  # on the GPU, where a kernel takes it
    if fused is not None:
        return fused
    # the logits of a linear model are finite: no -inf to mask, and the loss
    # as sum_i r_i log(sum_k exp(shifted_ik)) - sum_ik t_ik shifted_ik,
    # about half the passes of log_softmax_rows' way
    xp = get_namespace(logits)
    shifted = logits - row_max(logits)[..., None]
    floor = _LOG_FLOOR_FLOAT32 if logits.dtype == np.float32 else _LOG_FLOOR
    proba = xp.exp(xp.maximum(shifted, floor))
    total = row_sum(proba)
    row_weight = row_sum(targets)
    loss = vdot(row_weight, xp.log(total)) - vdot(targets, shifted)
    proba /= total[..., None]
    grad = proba * row_weight[..., None]
    grad -= targets
    return loss, grad, proba
