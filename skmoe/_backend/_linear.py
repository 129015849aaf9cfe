"""The normal equations of K weighted linear experts, on the GPU.

Expert ``j`` needs ``sum_i w_ij x1_i x1_i^T`` and ``sum_i w_ij y_i x1_i`` over
the rows it is given weight on, with ``x1 = [x - offset, 1]``. Under top-k
routing a row weighs on only k experts, so the work is made to scale with the
``n * k`` (row, expert) pairs of non-zero weight rather than with ``n * K``:
two passes over the weights (a count per block and expert, then a stable
listing by warp ballots) list the pairs grouped by expert, each expert's rows
ascending, and one kernel gathers each pair's row straight into shared memory
and accumulates the products there, forming only the upper triangle of the
symmetric Gram matrices. No gathered copy of the rows is written, which is
what a chunked cuBLAS product needs and what made it memory-bound. Dense
weights are the same computation with ``n * K`` pairs.
"""

import numpy as np

from . import require_cupy
from ._kernels import ROW_HELPERS_SOURCE, compiled_kernel, template_name

_SOURCE = (
    ROW_HELPERS_SOURCE
    + r"""
// Whether w is not zero, from its bits: a subnormal weight is not zero, and
// a comparison may flush it to zero in one code path and not another, which
// would make the counting and the listing disagree.
__device__ __forceinline__ bool skmoe_nonzero(float w) { return __float_as_uint(w) << 1; }
__device__ __forceinline__ bool skmoe_nonzero(double w) {
    return __double_as_longlong(w) << 1;
}

// The non-zero weights of the (n, K) row-major matrix, listed by expert. Block
// b takes rows [b R, (b + 1) R), blockDim.x at a time, one row per thread; a
// warp's ballot counts and ranks its non-zeros, and one thread per expert
// turns the warps' counts into where their pairs go. COUNT: the block's
// non-zeros per expert, at counts[j * gridDim.x + b]. Otherwise each
// non-zero's row and weight go to offsets[j * gridDim.x + b] plus its rank,
// so that each expert's pairs come out in ascending rows: the listing is
// stable, and no sort is needed.
template <typename T, bool COUNT>
__device__ void skmoe_pairs(const T* weights, long long n, int K, long long R,
                            long long* offsets, int* pair_row, T* pair_w) {
    // per warp and expert, a count, then where the warp's pairs go (warps x K);
    // per expert, where the block's next pair goes (K)
    extern __shared__ long long shared[];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    long long* next = shared + warps * K;
    for (int j = threadIdx.x; j < K; j += blockDim.x)
        next[j] = COUNT ? 0 : offsets[(long long)j * gridDim.x + blockIdx.x];
    const long long begin = blockIdx.x * R, end = min(n, begin + R);
    for (long long row0 = begin; row0 < end; row0 += blockDim.x) {
        const long long i = row0 + threadIdx.x;
        const T* row = weights + i * K;
        for (int j = 0; j < K; ++j) {
            const unsigned ballot = __ballot_sync(0xffffffffu, i < end && skmoe_nonzero(row[j]));
            if (lane == 0) shared[warp * K + j] = __popc(ballot);
        }
        __syncthreads();
        for (int j = threadIdx.x; j < K; j += blockDim.x)
            for (int v = 0; v < warps; ++v) {
                const long long count = shared[v * K + j];
                shared[v * K + j] = next[j];
                next[j] += count;
            }
        __syncthreads();
        if (!COUNT)
            for (int j = 0; j < K; ++j) {
                const T w = i < end ? row[j] : (T)0;
                const unsigned ballot = __ballot_sync(0xffffffffu, skmoe_nonzero(w));
                if (skmoe_nonzero(w)) {
                    const long long q = shared[warp * K + j] + __popc(ballot & ((1u << lane) - 1));
                    pair_row[q] = (int)i;
                    pair_w[q] = w;
                }
            }
        __syncthreads();
    }
    if (COUNT)
        for (int j = threadIdx.x; j < K; j += blockDim.x)
            offsets[(long long)j * gridDim.x + blockIdx.x] = next[j];
}

template <typename T>
__global__ void skmoe_count_pairs(const T* weights, long long n, int K, long long R,
                                  long long* counts) {
    skmoe_pairs<T, true>(weights, n, K, R, counts, nullptr, nullptr);
}

template <typename T>
__global__ void skmoe_list_pairs(const T* weights, long long n, int K, long long R,
                                 long long* offsets, int* pair_row, T* pair_w) {
    skmoe_pairs<T, false>(weights, n, K, R, offsets, pair_row, pair_w);
}

// Columns [c, c + 4) of a row, zeros past d; in 16-byte loads where VECTOR
// (d a multiple of 4 and the rows aligned).
template <typename T>
__device__ __forceinline__ void skmoe_load4(const T* row, long long c, long long d, bool vector,
                                            T* v) {
    if (vector && c < d) {
        skmoe_load_row<T, 4>(row + c, v);
    } else {
#pragma unroll
        for (int u = 0; u < 4; ++u) v[u] = c + u < d ? row[c + u] : (T)0;
    }
}

// The Gram matrix's 64 x 64 tile (ti, tj), ti <= tj, over the pairs
// [bounds[s], bounds[s + 1]) of one expert, s = blockIdx.x. CHUNK pairs at a
// time, the rows are gathered and centred into shared memory, 4 columns per
// thread; each thread then accumulates a patch of 8 rows x 4 columns of the
// products (8 x 4 rather than 4 x 4 halves the shared-memory reads per
// product, which bounded the kernel). A DIAGONAL tile (ti = tj = blockIdx.y)
// is symmetric: only the 81 patches that reach the upper triangle are formed,
// and a ninth row of patches and a seventeenth column hold w and (1, y),
// which gives w x and w y x over the tile's columns and, in the corner, w and
// w y. Other tiles form all 128 patches. Each block writes its own partial
// sums of the upper triangle and mirrors them: the caller adds the blocks'
// sums per expert, in a fixed order, so the result does not depend on the
// scheduling.
template <typename T, bool DIAGONAL>
__global__ void __launch_bounds__(128)
skmoe_pair_gram(const T* X, const T* offset, const T* y, long long d, bool vector,
                const int* pair_row, const T* pair_w, const long long* bounds, int n_tiles,
                T* gram, T* moments) {
    constexpr int TILE = 64, CHUNK = 32, GROUPS = TILE / 4;
    __shared__ __align__(16) T a_tile[CHUNK][TILE + 8];  // w (x - offset) of the rows; w
    __shared__ __align__(16) T b_tile[CHUNK][TILE + 4];  // x - offset of the columns; 1, y
    __shared__ T off_a[TILE], off_b[TILE];
    const long long seg = blockIdx.x, begin = bounds[seg], end = bounds[seg + 1];
    const int tid = threadIdx.x;
    int ti = blockIdx.y, tj = blockIdx.y, pr = 0, pc = tid;
    if (DIAGONAL) {  // patch row pr reaches the triangle from column 2 pr
        while (pr < 8 && pc >= GROUPS + 1 - 2 * pr) { pc -= GROUPS + 1 - 2 * pr; ++pr; }
        pc += pr < 8 ? 2 * pr : GROUPS;
    } else {  // tile t of the strict upper triangle of the tiles, row by row
        int t = blockIdx.y;
        ti = 0;
        while (t >= n_tiles - 1 - ti) { t -= n_tiles - 1 - ti; ++ti; }
        tj = ti + 1 + t;
        pr = tid / GROUPS;
        pc = tid % GROUPS;
    }
    const bool has_patch = pc <= GROUPS;  // DIAGONAL: threads 81 on have none
    for (int c = tid; c < TILE; c += blockDim.x) {
        off_a[c] = ti * TILE + c < d ? offset[ti * TILE + c] : (T)0;
        off_b[c] = tj * TILE + c < d ? offset[tj * TILE + c] : (T)0;
    }
    T acc[8][4];
#pragma unroll
    for (int i = 0; i < 8; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = 0;
    __syncthreads();
    for (long long p0 = begin; p0 < end; p0 += CHUNK) {
        for (int e = tid; e < CHUNK * GROUPS; e += blockDim.x) {
            const int p = e / GROUPS, c = 4 * (e % GROUPS);
            T a[4] = {0, 0, 0, 0}, b[4] = {0, 0, 0, 0};
            if (p0 + p < end) {
                const T* row = X + (long long)pair_row[p0 + p] * d;
                const T w = pair_w[p0 + p];
                skmoe_load4(row, tj * TILE + c, d, vector, b);
                if (!DIAGONAL) skmoe_load4(row, ti * TILE + c, d, vector, a);
#pragma unroll
                for (int u = 0; u < 4; ++u) {
                    b[u] -= off_b[c + u];
                    a[u] = w * (DIAGONAL ? b[u] : a[u] - off_a[c + u]);
                }
            }
            skmoe_store_row<T, 4>(a, &a_tile[p][c]);
            skmoe_store_row<T, 4>(b, &b_tile[p][c]);
        }
        if (DIAGONAL && tid < CHUNK) {
            const bool in = p0 + tid < end;
            const T w[4] = {in ? pair_w[p0 + tid] : (T)0, 0, 0, 0}, zero[4] = {0, 0, 0, 0};
            const T one_y[4] = {1, in ? y[pair_row[p0 + tid]] : (T)0, 0, 0};
            skmoe_store_row<T, 4>(w, &a_tile[tid][TILE]);
            skmoe_store_row<T, 4>(zero, &a_tile[tid][TILE + 4]);
            skmoe_store_row<T, 4>(one_y, &b_tile[tid][TILE]);
        }
        __syncthreads();
        if (has_patch) {
#pragma unroll 4
            for (int p = 0; p < CHUNK; ++p) {
                T a[8], b[4];
                skmoe_load_row<T, 8>(&a_tile[p][8 * pr], a);
                skmoe_load_row<T, 4>(&b_tile[p][4 * pc], b);
#pragma unroll
                for (int i = 0; i < 8; ++i)
#pragma unroll
                    for (int j = 0; j < 4; ++j) acc[i][j] += a[i] * b[j];
            }
        }
        __syncthreads();
    }
    if (!has_patch) return;
    T* out = gram + seg * d * d;
    T* m = moments + seg * (2 * d + 2);
#pragma unroll
    for (int i = 0; i < 8; ++i) {
        const long long r = ti * TILE + 8 * pr + i;
        if (pc < GROUPS) {
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                const long long c = tj * TILE + 4 * pc + j;
                if (r <= c && c < d) out[r * d + c] = out[c * d + r] = acc[i][j];
            }
        } else if (pr < 8) {  // the (1, y) column: w x and w y x
            if (r < d) { m[r] = acc[i][0]; m[d + r] = acc[i][1]; }
        } else if (ti == 0 && i == 0) {  // the corner: w and w y
            m[2 * d] = acc[0][0];
            m[2 * d + 1] = acc[0][1];
        }
    }
}
"""
)

# Pairs per block: enough work to keep a block busy, few enough that each
# thread's float32 running sums stay accurate (about sqrt(4096) roundings).
_SEGMENT = 4096
_TILE = 64
# Rows per block of the pair listing, and its threads.
_LIST_ROWS = 4096
_LIST_THREADS = 256


def _pairs_names(dtype):
    """The instances of skmoe_count_pairs and skmoe_list_pairs that
    :func:`expert_pairs` runs."""
    return template_name("skmoe_count_pairs", dtype), template_name("skmoe_list_pairs", dtype)


def _pair_gram_launches(n_features, dtype):
    """``(name, tiles, threads)`` of each launch of skmoe_pair_gram that
    :func:`weighted_normal_equations` makes per segment: the diagonal tiles
    (81 patches: 3 warps), then those above them (128), where there are any."""
    n_tiles = -(-n_features // _TILE)
    launches = [(True, n_tiles, 96), (False, n_tiles * (n_tiles - 1) // 2, 128)]
    return [
        (template_name("skmoe_pair_gram", dtype, str(diagonal).lower()), tiles, threads)
        for diagonal, tiles, threads in launches
        if tiles
    ]


def expert_pairs(weights):
    """The (row, expert) pairs of non-zero weight, grouped by expert.

    Parameters
    ----------
    weights : cupy.ndarray of shape (n, K)

    Returns
    -------
    pair_row : cupy.ndarray of shape (n_pairs,), int32
        Expert 0's rows in ascending order, then expert 1's, and so on.
    pair_w : cupy.ndarray of shape (n_pairs,)
        Their weights, in ``weights``' type.
    starts : numpy.ndarray of shape (K + 1,)
        Expert ``j``'s pairs are ``[starts[j], starts[j + 1])``.
    """
    cupy = require_cupy()
    n, n_experts = weights.shape
    if n >= 2**31:
        raise ValueError(f"the GPU experts take fewer than 2**31 rows; got {n}.")
    weights = cupy.ascontiguousarray(weights)
    blocks = max(1, -(-n // _LIST_ROWS))
    shared = (_LIST_THREADS // 32 + 1) * n_experts * 8
    args = (weights, cupy.int64(n), cupy.int32(n_experts), cupy.int64(_LIST_ROWS))
    counts = cupy.zeros(n_experts * blocks, dtype=cupy.int64)
    count_name, list_name = _pairs_names(weights.dtype)
    kernel = compiled_kernel(_SOURCE, count_name)
    kernel((blocks,), (_LIST_THREADS,), (*args, counts), shared_mem=shared)
    # expert-major, block-minor: an exclusive scan gives each block's offsets
    ends = cupy.cumsum(counts)
    offsets = ends - counts
    starts = cupy.concatenate([offsets[::blocks], ends[-1:]]).get()
    pair_row = cupy.empty(int(starts[-1]), dtype=cupy.int32)
    pair_w = cupy.empty(int(starts[-1]), dtype=weights.dtype)
    kernel = compiled_kernel(_SOURCE, list_name)
    kernel((blocks,), (_LIST_THREADS,), (*args, offsets, pair_row, pair_w), shared_mem=shared)
    return pair_row, pair_w, starts


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
    X = cupy.ascontiguousarray(X)
    pair_row, pair_w, starts = expert_pairs(cupy.asarray(weights, dtype=dtype))
    # each expert's pairs cut into segments of at most _SEGMENT pairs
    bounds = [np.arange(starts[j], starts[j + 1], _SEGMENT) for j in range(n_experts)]
    segment_expert = np.repeat(np.arange(n_experts), [len(b) for b in bounds])
    bounds = np.concatenate([*bounds, [starts[-1]]]).astype(np.int64)
    n_segments = len(segment_expert)
    n_tiles = -(-d // _TILE)
    gram = cupy.empty((n_segments, d, d), dtype=dtype)  # every entry is written
    moments = cupy.empty((n_segments, 2 * d + 2), dtype=dtype)
    args = (
        X,
        cupy.ascontiguousarray(offset, dtype=dtype),
        cupy.ascontiguousarray(y, dtype=dtype),
        cupy.int64(d),
        # 16-byte loads need every row's start 16-byte aligned
        cupy.bool_(d % 4 == 0 and X.data.ptr % 16 == 0),
        pair_row,
        pair_w,
        cupy.asarray(bounds),
        cupy.int32(n_tiles),
        gram,
        moments,
    )
    if n_segments:
        for name, tiles, threads in _pair_gram_launches(d, dtype):
            compiled_kernel(_SOURCE, name)((n_segments, tiles), (threads,), args)
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
