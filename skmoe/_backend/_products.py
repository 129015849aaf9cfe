"""Products over the rows of tall arrays, on either device: tiled or batched
on the GPU (see :mod:`._tiled`, :mod:`._linear`), NumPy and SciPy on the
CPU, where float32 products are summed in float64 (BLAS sums a float32
product's rows in float32, and over millions of rows few digits survive)."""

import numpy as np
import scipy.sparse as sp
from sklearn.utils.extmath import safe_sparse_dot

from . import get_namespace, is_cupy_array

# Rows per slice of transposed_product, on the GPU and (float32) on the CPU
# alike: BLAS and cuBLAS sum a float32 product's rows in float32, so no
# float32 sum runs over more rows than this; the slices' sums are added
# after (in float64 on the CPU). Not HOST_SLICE_ROWS, which bounds a slice's
# temporaries, though of the same value.
_PRODUCT_SLICE_ROWS = 1 << 14


def affine(X, W, b):
    """``X @ W + b`` for a thin ``W``: on the GPU one tiled kernel reads a
    dense X once (cuBLAS takes about twice as long on such shapes)."""
    out = _tiled_affine(X, W, b)
    return safe_sparse_dot(X, W) + b if out is None else out


def _tiled_affine(X, W, b):
    """The tiled kernel's ``X @ W + b`` for CuPy X; None for other input or
    sizes beyond the kernel."""
    if not is_cupy_array(X):
        return None
    from ._tiled import thin_product

    return thin_product(X, W, b)


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
    if is_cupy_array(A):
        return _batched_transposed_product(A, B)
    if np.result_type(A.dtype, B.dtype) == np.float32 and A.shape[0] > _PRODUCT_SLICE_ROWS:
        return _sliced_transposed_product(A, B)
    return safe_sparse_dot(A.T, B)


def _batched_transposed_product(A, B):
    """``A.T @ B`` of CuPy arrays: the products of slices of rows in one
    batched call, then summed."""
    xp = get_namespace(A)
    slices = A.shape[0] // _PRODUCT_SLICE_ROWS
    full = slices * _PRODUCT_SLICE_ROWS
    out = (
        A[full:].T @ B[full:] if full < A.shape[0] else xp.zeros((A.shape[1], B.shape[1]), A.dtype)
    )
    if slices:
        head_A = A[:full].reshape(slices, _PRODUCT_SLICE_ROWS, -1)
        head_B = B[:full].reshape(slices, _PRODUCT_SLICE_ROWS, -1)
        products = head_A.transpose(0, 2, 1) @ head_B
        out += column_sum(products.reshape(slices, -1)).reshape(out.shape)
    return out


def _sliced_transposed_product(A, B):
    """``A.T @ B`` of float32 NumPy arrays (A dense or CSR): float32 products
    of slices of rows, summed in float64, returned in float32."""
    if not (isinstance(A, np.ndarray) or A.format == "csr"):
        A = A.tocsr()  # slices of rows of other sparse formats cost a pass each
    out = np.zeros((A.shape[1], B.shape[1]))
    for start in range(0, A.shape[0], _PRODUCT_SLICE_ROWS):
        rows = slice(start, start + _PRODUCT_SLICE_ROWS)
        out += safe_sparse_dot(A[rows].T, B[rows])
    return out.astype(np.float32)


def weighted_grams(Z, weights):
    """``[Z, 1]' diag(weights[:, k]) [Z, 1]`` for every column of
    non-negative ``weights`` (n, K): a float64 host array of shape
    (K, d + 1, d + 1), Z dense or sparse. On the host, a dense one is
    ``B' B`` with ``B = sqrt(w) Z``, which BLAS forms as a symmetric rank-k
    update, half a general product's work (25-30% faster at 22k x 53). On
    the GPU one kernel forms all K in one pass over Z (the linear experts'
    normal equations, their right-hand sides unused), where K products each
    read a weighted copy of Z (56 against ~20 ms at 10M x 32, K=8)."""
    n, d = Z.shape
    if is_cupy_array(Z):
        from ._linear import weighted_normal_equations

        xp = get_namespace(Z)
        zeros = xp.zeros(n, dtype=Z.dtype), xp.zeros(d, dtype=Z.dtype)
        return weighted_normal_equations(Z, zeros[0], weights, zeros[1])[0]
    grams = np.empty((weights.shape[1], d + 1, d + 1))
    sums = np.asarray(transposed_product(Z, weights), dtype=np.float64)
    for k in range(weights.shape[1]):
        w = weights[:, k]
        if sp.issparse(Z):
            grams[k, :d, :d] = (Z.T @ sp.diags(w) @ Z).toarray()
        else:
            rooted = Z * np.sqrt(w)[:, None]
            grams[k, :d, :d] = rooted.T @ rooted
        grams[k, :d, d] = grams[k, d, :d] = sums[:, k]
        grams[k, d, d] = w.sum(dtype=np.float64)
    return grams


def column_sum(a):
    """``a.sum(axis=0)`` of a 2-D array, as a product with a vector of ones: on
    the GPU a reduction over the long axis of a tall array is an order of
    magnitude slower. Float32 NumPy input is summed in float64 and the result
    rounded to float32."""
    if not is_cupy_array(a) and a.dtype == np.float32:
        return np.add.reduce(a, axis=0, dtype=np.float64).astype(np.float32)
    return get_namespace(a).ones(a.shape[0], dtype=a.dtype) @ a
