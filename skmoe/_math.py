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
import scipy.sparse as sp
from sklearn.utils.extmath import safe_sparse_dot

from ._backend import get_namespace, is_cupy_array
from ._backend._kernels import MAX_EXPERTS, softmax_cross_entropy_kernel
from ._backend._tiled import thin_product

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


def affine(X, W, b):
    """``X @ W + b`` for a thin ``W``: on the GPU one tiled kernel reads a
    dense X once (cuBLAS takes about twice as long on such shapes)."""
    out = thin_product(X, W, b) if is_cupy_array(X) else None
    return safe_sparse_dot(X, W) + b if out is None else out


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


# Rows per slice in transposed_product on the GPU, and for float32 on the CPU.
_SLICE_ROWS = 1 << 14


def transposed_product(A, B):
    """``A.T @ B`` for tall ``A`` (n, p) and ``B`` (n, q), dense or sparse.

    On the GPU the rows are cut into slices whose products run as one batched
    call and are then summed. One cuBLAS call is faster (2.1 against 6.9 ms
    for 10M x 64 by 10M x 16 in float32) but adds each of its few outputs up
    over millions of rows in float32 in one run, and the gate's gradient, a
    small difference of large sums, loses its digits: L-BFGS then stalls.
    On the CPU float32 products are cut likewise, their slices summed in
    float64 (BLAS, too, sums a float32 product's rows in float32).
    """
    if not is_cupy_array(A):
        if _float32_on_host(A.dtype, B.dtype) and A.shape[0] > _SLICE_ROWS:
            return _sliced_transposed_product(A, B)
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


def weighted_grams(Z, weights):
    """``[Z, 1]' diag(weights[:, k]) [Z, 1]`` for every column of ``weights``
    (n, K): a float64 host array of shape (K, d + 1, d + 1), Z dense or
    sparse. On the GPU one kernel forms all K in one pass over Z (the linear
    experts' normal equations, their right-hand sides unused), where K
    products each read a weighted copy of Z (56 against ~20 ms at 10M x 32,
    K=8)."""
    n, d = Z.shape
    if is_cupy_array(Z):
        from ._backend._linear import weighted_normal_equations

        xp = get_namespace(Z)
        zeros = xp.zeros(n, dtype=Z.dtype), xp.zeros(d, dtype=Z.dtype)
        return weighted_normal_equations(Z, zeros[0], weights, zeros[1])[0]
    grams = np.empty((weights.shape[1], d + 1, d + 1))
    sums = np.asarray(transposed_product(Z, weights), dtype=np.float64)
    for k in range(weights.shape[1]):
        w = weights[:, k]
        product = Z.T @ sp.diags(w) @ Z if sp.issparse(Z) else Z.T @ (Z * w[:, None])
        grams[k, :d, :d] = product.toarray() if sp.issparse(product) else product
        grams[k, :d, d] = grams[k, d, :d] = sums[:, k]
        grams[k, d, d] = w.sum(dtype=np.float64)
    return grams


def _sliced_transposed_product(A, B):
    """``A.T @ B`` of float32 NumPy arrays (A dense or CSR): float32 products
    of slices of rows, summed in float64, returned in float32."""
    if not (isinstance(A, np.ndarray) or A.format == "csr"):
        A = A.tocsr()  # slices of rows of other sparse formats cost a pass each
    out = np.zeros((A.shape[1], B.shape[1]))
    for start in range(0, A.shape[0], _SLICE_ROWS):
        rows = slice(start, start + _SLICE_ROWS)
        out += safe_sparse_dot(A[rows].T, B[rows])
    return out.astype(np.float32)


def column_sum(a):
    """``a.sum(axis=0)`` of a 2-D array, as a product with a vector of ones: on
    the GPU a reduction over the long axis of a tall array is an order of
    magnitude slower. Float32 NumPy input is summed in float64 and the result
    rounded to float32."""
    if not is_cupy_array(a) and a.dtype == np.float32:
        return np.add.reduce(a, axis=0, dtype=np.float64).astype(np.float32)
    return get_namespace(a).ones(a.shape[0], dtype=a.dtype) @ a


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
    if is_cupy_array(logits) and logits.ndim == 2 and logits.shape[1] <= MAX_EXPERTS:
        return softmax_cross_entropy_kernel(logits, targets)
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
