"""Row-wise log-space arithmetic over a short last axis (experts or classes).

NumPy reduces a short trailing axis (K experts, C classes) an order of magnitude
slower than a long one, and these reductions run in every EM iteration. Summing
through a matrix product and taking maxima over a loop of K columns keeps them
at memory speed. Each function works on NumPy and CuPy arrays alike.
"""

from sklearn.utils.extmath import safe_sparse_dot

from ._backend import get_namespace, is_cupy_array
from ._backend._kernels import MAX_EXPERTS, softmax_cross_entropy_kernel

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


# Rows per slice in transposed_product on the GPU.
_SLICE_ROWS = 1 << 14


def transposed_product(A, B):
    """``A.T @ B`` for tall ``A`` (n, p) and ``B`` (n, q), dense or sparse.

    On the GPU the rows are cut into slices whose products run as one batched
    call and are then summed. One cuBLAS call is faster (2.1 against 6.9 ms
    for 10M x 64 by 10M x 16 in float32) but adds each of its few outputs up
    over millions of rows in float32 in one run, and the gate's gradient, a
    small difference of large sums, loses its digits: L-BFGS then stalls.
    """
    if not is_cupy_array(A):
        return safe_sparse_dot(A.T, B)
    xp = get_namespace(A)
    slices = A.shape[0] // _SLICE_ROWS
    full = slices * _SLICE_ROWS
    out = (
        A[full:].T @ B[full:] if full < A.shape[0] else xp.zeros((A.shape[1], B.shape[1]), A.dtype)
    )
    if slices:
        head_A = A[:full].reshape(slices, _SLICE_ROWS, -1)
        head_B = B[:full].reshape(slices, _SLICE_ROWS, -1)
        products = head_A.transpose(0, 2, 1) @ head_B
        out += column_sum(products.reshape(slices, -1)).reshape(out.shape)
    return out


def column_sum(a):
    """``a.sum(axis=0)`` of a 2-D array, as a product with a vector of ones: on
    the GPU a reduction over the long axis of a tall array is an order of
    magnitude slower."""
    return get_namespace(a).ones(a.shape[0], dtype=a.dtype) @ a


def exp_floored(a, out=None):
    """``exp(a)`` of log-probabilities, with arguments raised to at least -500.

    ``-inf`` (an expert a sparse gate did not select) still gives exactly 0.
    """
    xp = get_namespace(a)
    selected = a != -xp.inf
    result = xp.exp(xp.maximum(a, _LOG_FLOOR, out=out), out=out)
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
    if is_cupy_array(logits) and logits.ndim == 2 and logits.shape[1] <= MAX_EXPERTS:
        return softmax_cross_entropy_kernel(logits, targets)
    log_p = log_softmax_rows(logits)
    loss = -get_namespace(log_p).vdot(targets, log_p)
    proba = exp_floored(log_p, out=log_p)
    grad = proba * row_sum(targets)[..., None]
    grad -= targets
    return loss, grad, proba
