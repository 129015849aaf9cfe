"""The normal equations of K weighted linear experts, on the GPU.

Expert ``j`` needs ``sum_i w_ij x1_i x1_i^T`` and ``sum_i w_ij y_i x1_i`` over
the rows it is given weight on, with ``x1 = [x - offset, 1]``. Under top-k
routing a row weighs on only k experts, so the work is made to scale with the
``n * k`` (row, expert) pairs of non-zero weight rather than with ``n * K``:
a scan of the transposed weights lists the pairs grouped by expert (each
expert's rows ascending), and one kernel gathers each pair's row straight into
shared memory and accumulates the products there. No gathered copy of the
rows is written, which is what a chunked cuBLAS product needs and what made it
memory-bound. Dense weights are the same computation with ``n * K`` pairs.
"""

import numpy as np

from . import require_cupy
from ._kernels import compiled_kernel, template_name

_SOURCE = r"""
// Block (s, t) takes the pairs [bounds[s], bounds[s + 1]), all of one expert,
// and tile t = (ti, tj), ti <= tj, of the d x d Gram matrix. CHUNK pairs at a
// time, the rows are gathered and centred into shared memory; each of the 256
// threads accumulates a 4 x 4 patch of the 64 x 64 tile. Diagonal tiles also
// sum w x and w y x over their columns, the first of them w and w y. Each
// block writes its own partial sums: the caller adds them up per expert, in a
// fixed order, so the result does not depend on the scheduling.
template <typename T>
__global__ void skmoe_pair_gram(const T* X, const T* offset, const T* y, long long d,
                                const long long* pair_row, const T* pair_w,
                                const long long* bounds, int n_tiles, T* gram, T* moments) {
    const int TILE = 64, CHUNK = 16;
    __shared__ T a_tile[CHUNK][TILE];  // w (x - offset), the tile's rows
    __shared__ T b_tile[CHUNK][TILE];  // x - offset, the tile's columns
    __shared__ T w_chunk[CHUNK], y_chunk[CHUNK];
    const long long seg = blockIdx.x, begin = bounds[seg], end = bounds[seg + 1];
    int ti = 0, t = blockIdx.y;
    while (t >= n_tiles - ti) { t -= n_tiles - ti; ++ti; }
    const int tj = ti + t, tid = threadIdx.x, tr = tid / 16, tc = tid % 16;
    const bool diagonal = ti == tj;
    T acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = 0;
    T moment = 0, weight_sum = 0, weight_y_sum = 0;
    for (long long p0 = begin; p0 < end; p0 += CHUNK) {
        for (int e = tid; e < CHUNK * TILE; e += blockDim.x) {
            const int p = e / TILE, c = e % TILE;
            const long long q = p0 + p, ca = ti * TILE + c, cb = tj * TILE + c;
            T a = 0, b = 0;
            if (q < end) {
                const T* row = X + pair_row[q] * d;
                if (ca < d) a = pair_w[q] * (row[ca] - offset[ca]);
                if (cb < d) b = row[cb] - offset[cb];
            }
            a_tile[p][c] = a;
            b_tile[p][c] = b;
        }
        if (tid < CHUNK) {
            const long long q = p0 + tid;
            w_chunk[tid] = q < end ? pair_w[q] : 0;
            y_chunk[tid] = q < end ? y[pair_row[q]] : 0;
        }
        __syncthreads();
#pragma unroll
        for (int p = 0; p < CHUNK; ++p) {
            T a[4], b[4];
#pragma unroll
            for (int i = 0; i < 4; ++i) {
                a[i] = a_tile[p][4 * tr + i];
                b[i] = b_tile[p][4 * tc + i];
            }
#pragma unroll
            for (int i = 0; i < 4; ++i)
#pragma unroll
                for (int j = 0; j < 4; ++j) acc[i][j] += a[i] * b[j];
        }
        if (diagonal && tid < 2 * TILE) {
#pragma unroll
            for (int p = 0; p < CHUNK; ++p)
                moment += tid < TILE ? a_tile[p][tid] : a_tile[p][tid - TILE] * y_chunk[p];
        } else if (diagonal && ti == 0 && tid == 2 * TILE) {
#pragma unroll
            for (int p = 0; p < CHUNK; ++p) {
                weight_sum += w_chunk[p];
                weight_y_sum += w_chunk[p] * y_chunk[p];
            }
        }
        __syncthreads();
    }
    T* out = gram + seg * d * d;
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            const long long r = ti * TILE + 4 * tr + i, c = tj * TILE + 4 * tc + j;
            if (r < d && c < d) {
                out[r * d + c] = acc[i][j];
                if (!diagonal) out[c * d + r] = acc[i][j];
            }
        }
    if (!diagonal) return;
    T* m = moments + seg * (2 * d + 2);
    const long long c = ti * TILE + tid % TILE;
    if (tid < 2 * TILE && c < d) m[(tid < TILE ? 0 : d) + c] = moment;
    if (ti == 0 && tid == 2 * TILE) { m[2 * d] = weight_sum; m[2 * d + 1] = weight_y_sum; }
}
"""

# Pairs per block: enough work to keep a block busy, few enough that each
# thread's float32 running sums stay accurate (about sqrt(4096) roundings).
_SEGMENT = 4096
_TILE = 64


def weighted_normal_equations(X, y, weights, offset):
    """Every expert's weighted Gram matrix and right-hand side, on the GPU.

    Parameters
    ----------
    X : cupy.ndarray of shape (n, d), float32 or float64
    y : cupy.ndarray of shape (n,)
    weights : cupy.ndarray of shape (n, K)
        Non-negative; zeros (rows a top-k gate did not route to an expert)
        cost nothing.
    offset : cupy.ndarray of shape (d,)
        Subtracted from every row, which keeps float32 sums accurate when the
        features have an offset.

    Returns
    -------
    gram : numpy.ndarray of shape (K, d + 1, d + 1), float64
        ``sum_i w_ij x1_i x1_i^T`` with ``x1 = [x - offset, 1]``; its last
        diagonal entry is the expert's total weight.
    rhs : numpy.ndarray of shape (K, d + 1), float64
        ``sum_i w_ij y_i x1_i``.
    """
    cupy = require_cupy()
    n, d = X.shape
    n_experts = weights.shape[1]
    dtype = X.dtype
    by_expert = cupy.ascontiguousarray(weights.T, dtype=dtype)
    flat = cupy.flatnonzero(by_expert)
    pair_w, pair_row = by_expert.ravel()[flat], flat % n
    # where each expert's pairs start: flat is sorted, so a binary search each
    starts = cupy.searchsorted(flat, cupy.arange(n_experts + 1) * n).get()
    # each expert's pairs cut into segments of at most _SEGMENT pairs
    bounds = [np.arange(starts[j], starts[j + 1], _SEGMENT) for j in range(n_experts)]
    segment_expert = np.repeat(np.arange(n_experts), [len(b) for b in bounds])
    bounds = np.concatenate([*bounds, [starts[-1]]]).astype(np.int64)
    n_segments = len(segment_expert)
    n_tiles = -(-d // _TILE)
    gram = cupy.zeros((n_segments, d, d), dtype=dtype)
    moments = cupy.zeros((n_segments, 2 * d + 2), dtype=dtype)
    if n_segments:
        compiled_kernel(_SOURCE, template_name("skmoe_pair_gram", dtype))(
            (n_segments, n_tiles * (n_tiles + 1) // 2),
            (256,),
            (
                X,
                cupy.ascontiguousarray(offset, dtype=dtype),
                cupy.ascontiguousarray(y, dtype=dtype),
                cupy.int64(d),
                pair_row,
                pair_w,
                cupy.asarray(bounds),
                cupy.int32(n_tiles),
                gram,
                moments,
            ),
        )
    # the segments' partial sums added per expert in float64, in one product
    membership = cupy.zeros((n_experts, n_segments))
    membership[cupy.asarray(segment_expert), cupy.arange(n_segments)] = 1.0
    gram = (membership @ gram.reshape(n_segments, -1).astype(cupy.float64)).get()
    moments = (membership @ moments.astype(cupy.float64)).get()
    full = np.empty((n_experts, d + 1, d + 1))
    full[:, :d, :d] = gram.reshape(n_experts, d, d)
    full[:, :d, d] = full[:, d, :d] = moments[:, :d]
    full[:, d, d] = moments[:, 2 * d]
    rhs = np.concatenate([moments[:, d : 2 * d], moments[:, 2 * d + 1 :]], axis=1)
    return full, rhs
