"""The M-step of K linear (ridge) experts on the GPU under top-k routing.

Each row's responsibilities live on its k selected experts, so the K weighted
Gram matrices need only n * k row visits, not n * K: the (row, expert) pairs
are sorted by expert, each expert's rows gathered once into chunks, and one
batched product of the chunks (cuBLAS through CuPy) gives every Gram matrix.
The K systems are then solved in one batched call.
"""

import numpy as np

from . import require_cupy

# Rows per chunk of the batched Gram product.
_CHUNK = 2048


def linear_experts_top_k(X, y, resp, index, n_experts, *, alpha):
    """Ridge coefficients of ``n_experts`` experts from top-k responsibilities.

    Expert ``j`` minimises ``sum_i h_ij (y_i - x_i @ coef_j - intercept_j)^2 +
    alpha * ||coef_j||^2`` where ``h_ij`` is the weight of the pair ``(i, j)``:
    the problem :class:`~skmoe.experts.LinearExperts` solves, with the weights
    given sparsely. An expert with no rows gets zero coefficients.

    Parameters
    ----------
    X : cupy.ndarray of shape (n, d)
    y : cupy.ndarray of shape (n,)
    resp : cupy.ndarray of shape (n, k)
        Weights of the selected experts (responsibilities times sample weights).
    index : cupy.ndarray of shape (n, k), integer
        The selected experts.
    n_experts : int
    alpha : float

    Returns
    -------
    coef : cupy.ndarray of shape (n_experts, d)
    intercept : cupy.ndarray of shape (n_experts,)
    """
    cupy = require_cupy()
    n, d = X.shape
    k = index.shape[1]
    expert = index.ravel()
    order = cupy.argsort(expert)
    counts = cupy.bincount(expert, minlength=n_experts).get()
    # Each expert's pairs are laid out in whole chunks of _CHUNK rows (zero rows
    # pad the last), so that one batched product of the chunks gives every
    # Gram matrix, and the right-hand sides as one more column.
    n_chunks = -(-counts // _CHUNK)
    chunk_bounds = np.concatenate([[0], np.cumsum(n_chunks)])
    pair_start = np.concatenate([[0], np.cumsum(counts)])[:-1]
    shift = cupy.asarray(chunk_bounds[:-1] * _CHUNK - pair_start)
    # the source pair of each padded slot (n * k, past the end, for padding),
    # so that one gather fills the chunks
    source = cupy.full(int(chunk_bounds[-1]) * _CHUNK, n * k, dtype=order.dtype)
    source[cupy.arange(n * k) + shift[expert[order]]] = order
    # rows scaled by the square roots of their weights (0 for padding), so
    # that each Gram matrix is a plain X1^T X1; centred, which keeps float32
    # sums accurate when X has an offset. The mean is a product: CuPy's column
    # reduction of a tall array took 230 ms on 10M x 64.
    root = cupy.sqrt(cupy.concatenate([resp.ravel(), cupy.zeros(1, dtype=X.dtype)]))[source]
    rows = cupy.minimum(source // k, n - 1)
    offset = cupy.ones(n, dtype=X.dtype) @ X / n
    X1 = cupy.empty((len(source), d + 2), dtype=X.dtype)
    X1[:, :d] = X[rows]
    X1[:, :d] -= offset
    X1[:, :d] *= root[:, None]
    X1[:, d] = root
    X1[:, d + 1] = root * y[rows]
    chunks = X1.reshape(-1, _CHUNK, d + 2)
    products = cupy.matmul(chunks.transpose(0, 2, 1), chunks)
    gram = cupy.zeros((n_experts, d + 1, d + 1), dtype=X.dtype)
    rhs = cupy.zeros((n_experts, d + 1), dtype=X.dtype)
    for j in np.flatnonzero(counts):
        total = products[chunk_bounds[j] : chunk_bounds[j + 1]].sum(axis=0)
        gram[j], rhs[j] = total[: d + 1, : d + 1], total[: d + 1, d + 1]
    diagonal = cupy.full(d + 1, alpha, dtype=X.dtype)
    diagonal[d] = 0
    gram += cupy.diag(diagonal)
    gram[counts == 0] = cupy.eye(d + 1, dtype=X.dtype)  # no rows: zero coefficients
    theta = cupy.linalg.solve(gram, rhs[..., None])[..., 0]
    coef = theta[:, :d]
    return coef, theta[:, d] - coef @ offset
