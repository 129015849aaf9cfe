"""Kernels that read a tall matrix once, a tile of rows at a time.

Each block stages tiles of rows in shared memory and forms their products with
a small weight matrix from 4 x 4 register patches, then finishes each row
where it stands; nothing of size n x K goes to global memory.

- The gate's M-step objective. L-BFGS evaluates the soft-target softmax
  cross-entropy of ``Z @ W + b`` and its gradient ``Z.T @ (softmax * rowsum(T)
  - T)`` some 30 times per M-step. Written as library calls that is a GEMM
  writing the (n, K) logits, a pass writing the (n, K) gradient and a second
  product reading Z again, about 10 ms at 10M x 64, K=16. The kernel adds
  each tile's share of ``Z.T @ grad`` in T and the tiles' in float64, so the
  gradient keeps its digits at any n (a single float32 product over millions
  of rows does not, and L-BFGS then stalls); the few hundred blocks' partial
  sums are added by the caller, in a fixed order.
- Prediction of the mixture of linear experts: the gate's logits and the
  experts' means of a tile of rows, then each row's top-k weighted mean.
"""

from functools import cache

import numpy as np

from . import require_cupy
from ._kernels import (
    MAX_EXPERTS,
    ROW_HELPERS_SOURCE,
    compiled_kernel,
    mixture_mean,
    template_name,
)

_THREADS = 128
_BLOCKS_PER_SM = 4
_STATIC_SHARED_BYTES = 48 * 1024
# Each thread keeps at most 2 patches (4 x 4) of Z.T @ grad in registers.
_MAX_PATCHES = 2 * _THREADS

_SOURCE = (
    ROW_HELPERS_SOURCE
    + r"""
#define SKMOE_THREADS 128  // every kernel here runs blocks of 128 threads

// The (D, N) matrix W into shared memory as (DP, NP), zero-padded.
template <typename T, int D, int DP, int N, int NP>
__device__ __forceinline__ void skmoe_load_weights(const T* W, T* ws) {
    for (int e = threadIdx.x; e < DP * NP; e += SKMOE_THREADS) {
        const int j = e / NP, k = e % NP;
        ws[e] = (j < D && k < N) ? W[j * N + k] : (T)0;
    }
}

// Rows [row0, row0 + TR) of the (n, D) matrix X into shared memory (zeros past
// n), in coalesced loads. Where D is a multiple of the vector width and X is
// aligned, each thread issues all its loads of the tile, 16 bytes each, before
// its first store: the kernels wait on these loads more than on anything else,
// and scalar loads stored as they came kept too few bytes in flight.
template <typename T, int D, int TR, int XS>
__device__ __forceinline__ void skmoe_load_tile(const T* X, long long n, long long row0, T* xs) {
    typedef skmoe_vec<T> V;
    typedef typename V::type VT;
    constexpr int VD = D / V::width, PER = (TR * VD + SKMOE_THREADS - 1) / SKMOE_THREADS;
    const long long rows = n - row0 < TR ? n - row0 : TR;
    if (D % V::width == 0 && reinterpret_cast<size_t>(X) % sizeof(VT) == 0) {
        const T zero[V::width] = {};
        VT v[PER > 0 ? PER : 1];  // (PER is 0 where D is under the width)
#pragma unroll
        for (int q = 0; q < PER; ++q) {
            const int e = threadIdx.x + q * SKMOE_THREADS;
            v[q] = e < TR * VD && e / VD < rows ? reinterpret_cast<const VT*>(X + row0 * D)[e]
                                                : V::join(zero);
        }
#pragma unroll
        for (int q = 0; q < PER; ++q) {
            const int e = threadIdx.x + q * SKMOE_THREADS;
            if (e < TR * VD) V::split(v[q], xs + (e / VD) * XS + (e % VD) * V::width);
        }
    } else {
#pragma unroll 8
        for (int e = threadIdx.x; e < TR * D; e += SKMOE_THREADS)
            xs[(e / D) * XS + e % D] = e < rows * D ? X[row0 * D + e] : (T)0;
    }
}

// out[r][k] = bias[k] + sum_j xs[r][j] ws[j][k] for the tile's TR rows and
// OUT outputs (bias zero past n_bias), 4 rows x 4 outputs per thread. Row
// strides XS and OS; ws is (D, OUT) with OUT a multiple of 4.
template <typename T, int D, int OUT, int TR, int XS, int OS>
__device__ __forceinline__ void skmoe_tile_products(const T* xs, const T* ws, const T* bias,
                                                    int n_bias, T* out) {
    for (int p = threadIdx.x; p < (TR / 4) * (OUT / 4); p += SKMOE_THREADS) {
        const int r0 = 4 * (p / (OUT / 4)), k0 = 4 * (p % (OUT / 4));
        T l[4][4];
#pragma unroll
        for (int c = 0; c < 4; ++c) {
            const T b = k0 + c < n_bias ? bias[k0 + c] : (T)0;
#pragma unroll
            for (int i = 0; i < 4; ++i) l[i][c] = b;
        }
#pragma unroll 8
        for (int j = 0; j < D; ++j) {
            T x[4], w[4];
#pragma unroll
            for (int i = 0; i < 4; ++i) {
                x[i] = xs[(r0 + i) * XS + j];
                w[i] = ws[j * OUT + k0 + i];
            }
#pragma unroll
            for (int i = 0; i < 4; ++i)
#pragma unroll
                for (int c = 0; c < 4; ++c) l[i][c] += x[i] * w[c];
        }
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
            for (int c = 0; c < 4; ++c) out[(r0 + i) * OS + k0 + c] = l[i][c];
    }
}

// Block b takes the tiles of TR rows b, b + gridDim.x, ... Per tile: the
// rows of Z into shared memory; the logits, 4 rows x 4 experts per thread;
// one row per thread for the loss and the gradient on the logits (written
// over the logits), the gradient's column sums reduced across each warp;
// then Z.T @ grad, 4 features x 4 experts per thread over a share of the
// tile's rows. Each tile's sums are added into float64 totals; the block
// writes its totals for the caller to add.
template <typename T, int K, int D, int TR>
__global__ void skmoe_gate_loss_grad(const T* __restrict__ Z, const T* __restrict__ targets,
                                     const T* __restrict__ W, const T* __restrict__ b,
                                     long long n, double* grad_part, double* bias_part,
                                     double* loss_part) {
    constexpr int THREADS = SKMOE_THREADS;
    constexpr int KP = (K + 3) / 4 * 4, DP = (D + 3) / 4 * 4;
    constexpr int BASE = (DP / 4) * (KP / 4);
    // the tile's rows are split among SPLIT groups of threads when the
    // patches of Z.T @ grad are fewer than the threads
    constexpr int SPLIT = BASE >= THREADS ? 1 : THREADS / BASE;
    constexpr int GRAD_PATCHES = BASE * SPLIT;
    constexpr int SLOTS = (GRAD_PATCHES + THREADS - 1) / THREADS;
    __shared__ T zs[TR][DP + 1];  // +1: rows 4 apart fall in distinct banks
    __shared__ T ls[TR][KP + 1];  // the logits, then the gradient on them
    __shared__ T ws[DP][KP];
    const int tid = threadIdx.x, lane = tid % 32;
    skmoe_load_weights<T, D, DP, K, KP>(W, &ws[0][0]);
    if (DP > D)
        for (int e = tid; e < TR * DP; e += THREADS)
            if (e % DP >= D) zs[e / DP][e % DP] = 0;
    double total[SLOTS][4][4];
#pragma unroll
    for (int s = 0; s < SLOTS; ++s)
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
            for (int c = 0; c < 4; ++c) total[s][i][c] = 0;
    double loss = 0, bias_sum[(K + 31) / 32];
#pragma unroll
    for (int q = 0; q < (K + 31) / 32; ++q) bias_sum[q] = 0;

    const long long stride = (long long)gridDim.x * TR;
    for (long long row0 = (long long)blockIdx.x * TR; row0 < n; row0 += stride) {
        __syncthreads();  // the previous tile is no longer read
        skmoe_load_tile<T, D, TR, DP + 1>(Z, n, row0, &zs[0][0]);
        __syncthreads();
        skmoe_tile_products<T, D, KP, TR, DP + 1, KP + 1>(&zs[0][0], &ws[0][0], b, K, &ls[0][0]);
        __syncthreads();

        const long long rows = n - row0 < TR ? n - row0 : TR;
        if (tid < TR) {  // whole warps: TR is a multiple of 32
            T l[K], t[K];
#pragma unroll
            for (int j = 0; j < K; ++j) l[j] = ls[tid][j];
            if (tid < rows) {
                skmoe_load_row<T, K>(targets + (row0 + tid) * K, t);
            } else {
#pragma unroll
                for (int j = 0; j < K; ++j) t[j] = 0;
            }
            loss += skmoe_softmax_xent_row<T, K>(l, t);  // t is now the gradient
#pragma unroll
            for (int j = 0; j < K; ++j) {
                ls[tid][j] = t[j];
                T s = t[j];
#pragma unroll
                for (int offset = 16; offset > 0; offset /= 2)
                    s += __shfl_xor_sync(0xffffffffu, s, offset);
                if (lane == j % 32) bias_sum[j / 32] += s;
            }
        }
        __syncthreads();

#pragma unroll
        for (int s = 0; s < SLOTS; ++s) {
            const int p = tid + s * THREADS;
            if (p >= GRAD_PATCHES) break;
            const int part = p / BASE, j0 = 4 * ((p % BASE) / (KP / 4)), k0 = 4 * (p % (KP / 4));
            T acc[4][4] = {};
            for (int r = part; r < TR; r += SPLIT) {
                T z[4], g[4];
#pragma unroll
                for (int i = 0; i < 4; ++i) { z[i] = zs[r][j0 + i]; g[i] = ls[r][k0 + i]; }
#pragma unroll
                for (int i = 0; i < 4; ++i)
#pragma unroll
                    for (int c = 0; c < 4; ++c) acc[i][c] += z[i] * g[c];
            }
#pragma unroll
            for (int i = 0; i < 4; ++i)
#pragma unroll
                for (int c = 0; c < 4; ++c) total[s][i][c] += acc[i][c];
        }
    }

#pragma unroll
    for (int s = 0; s < SLOTS; ++s) {
        const int p = tid + s * THREADS;
        if (p >= GRAD_PATCHES) break;
        const int part = p / BASE, j0 = 4 * ((p % BASE) / (KP / 4)), k0 = 4 * (p % (KP / 4));
        double* out = grad_part + ((long long)blockIdx.x * SPLIT + part) * DP * KP;
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
            for (int c = 0; c < 4; ++c) out[(j0 + i) * KP + k0 + c] = total[s][i][c];
    }
    loss_part[blockIdx.x * THREADS + tid] = loss;
    if (tid < TR) {
        double* out = bias_part + ((long long)blockIdx.x * (TR / 32) + tid / 32) * K;
#pragma unroll
        for (int q = 0; q < (K + 31) / 32; ++q)
            if (q * 32 + lane < K) out[q * 32 + lane] = bias_sum[q];
    }
}

// Prediction of a mixture of linear experts: each row's gate logits and
// expert means from the (D, 2K) weights W and the bias, the logits first,
// then the weighted mean over the row's TOPK experts.
template <typename T, int K, int TOPK, int D, int TR>
__global__ void skmoe_mixture_predict(const T* __restrict__ X, const T* __restrict__ W,
                                      const T* __restrict__ bias, long long n, T* out) {
    constexpr int OUT = (2 * K + 3) / 4 * 4;
    __shared__ T xs[TR][D + 1];
    __shared__ T os[TR][OUT + 1];
    __shared__ T ws[D][OUT];
    skmoe_load_weights<T, D, D, 2 * K, OUT>(W, &ws[0][0]);
    const long long stride = (long long)gridDim.x * TR;
    for (long long row0 = (long long)blockIdx.x * TR; row0 < n; row0 += stride) {
        // (the previous tile's xs was last read before its second barrier)
        skmoe_load_tile<T, D, TR, D + 1>(X, n, row0, &xs[0][0]);
        __syncthreads();
        skmoe_tile_products<T, D, OUT, TR, D + 1, OUT + 1>(&xs[0][0], &ws[0][0], bias, 2 * K,
                                                          &os[0][0]);
        __syncthreads();
        const int r = threadIdx.x;
        if (r < TR && row0 + r < n) {
            T l[K], m[K];
#pragma unroll
            for (int j = 0; j < K; ++j) { l[j] = os[r][j]; m[j] = os[r][K + j]; }
            out[row0 + r] = skmoe_top_k_mean<T, K, TOPK>(l, m);
        }
    }
}
"""
)


def _padded(size):
    return (size + 3) // 4 * 4


def _tile_rows(row_values, fixed_values, itemsize):
    """Rows per tile: the most of 128, 64 or 32 for which ``row_values`` per
    row and ``fixed_values`` in all fit the static shared memory, or None."""
    for rows in (128, 64, 32):
        if (rows * row_values + fixed_values) * itemsize <= _STATIC_SHARED_BYTES:
            return rows
    return None


@cache
def _multiprocessors(device_id):
    # asked once per device: ``attributes`` queries every attribute there is
    return require_cupy().cuda.Device(device_id).attributes["MultiProcessorCount"]


def _blocks(n, rows):
    """Blocks of the grid-stride loops: a few per multiprocessor, fewer for
    short inputs."""
    sm_count = _multiprocessors(require_cupy().cuda.Device().id)
    return max(1, min(-(-n // rows), _BLOCKS_PER_SM * sm_count))


def softmax_loss_terms(Z, targets):
    """``(coef, intercept) -> (loss, grad_coef, grad_intercept)`` for the
    soft-target softmax cross-entropy of ``Z @ coef + intercept``, by one
    kernel; None where the sizes are beyond it (the caller then composes the
    loss from library calls).

    Parameters
    ----------
    Z : cupy.ndarray of shape (n, d), float32 or float64, C-contiguous
    targets : cupy.ndarray of shape (n, K)
        Non-negative weighted soft targets; ``targets[i].sum()`` is row ``i``'s
        weight, as in :func:`skmoe._math.softmax_cross_entropy`.

    Returns
    -------
    callable or None
        Its loss is a float64 0-d array, its gradients float64 arrays of
        shapes (d, K) and (K,).
    """
    cupy = require_cupy()
    (n, d), n_experts = Z.shape, targets.shape[1]
    dp, kp = _padded(d), _padded(n_experts)
    rows = _tile_rows(dp + kp + 2, dp * kp, Z.dtype.itemsize)
    patches = (dp // 4) * (kp // 4)
    if (
        Z.dtype not in (cupy.float32, cupy.float64)
        or not Z.flags.c_contiguous
        or n_experts > MAX_EXPERTS
        or rows is None
        or patches > _MAX_PATCHES
    ):
        return None
    targets = cupy.ascontiguousarray(targets, dtype=Z.dtype)
    kernel = compiled_kernel(
        _SOURCE, template_name("skmoe_gate_loss_grad", Z.dtype, n_experts, d, rows)
    )
    blocks = _blocks(n, rows)
    split = 1 if patches >= _THREADS else _THREADS // patches
    grad_part = cupy.empty((blocks * split, dp * kp))
    bias_part = cupy.empty((blocks * (rows // 32), n_experts))
    loss_part = cupy.empty((blocks * _THREADS, 1))
    ones = cupy.ones(max(len(grad_part), len(bias_part), len(loss_part)))

    def terms(coef, intercept):
        coef = cupy.ascontiguousarray(cupy.asarray(coef, dtype=Z.dtype))
        intercept = cupy.ascontiguousarray(cupy.asarray(intercept, dtype=Z.dtype))
        if n == 0:
            return cupy.zeros((), np.float64), cupy.zeros(coef.shape), cupy.zeros(n_experts)
        kernel(
            (blocks,),
            (_THREADS,),
            (Z, targets, coef, intercept, cupy.int64(n), grad_part, bias_part, loss_part),
        )
        # the blocks' partial sums, each as one product
        grad = (ones[: len(grad_part)] @ grad_part).reshape(dp, kp)[:d, :n_experts]
        loss = ones[: len(loss_part)] @ loss_part
        return loss[0], grad, ones[: len(bias_part)] @ bias_part

    return terms


def mixture_predict(X, weights, bias, k):
    """Each row's mean over its top-``k`` experts, weighted by the gate, from
    ``X @ weights + bias`` (the gate's logits, then the experts' means), with
    nothing of size n x K written.

    Parameters
    ----------
    X : cupy.ndarray of shape (n, d), float32 or float64
    weights : cupy.ndarray of shape (d, 2 K)
    bias : cupy.ndarray of shape (2 K,)
    k : int
        Experts per row; ``K`` for a dense gate.

    Returns
    -------
    cupy.ndarray of shape (n,)
        Sizes beyond the tiled kernel go through one GEMM and
        :func:`~skmoe._backend._kernels.mixture_mean`.
    """
    cupy = require_cupy()
    (n, d), n_experts = X.shape, weights.shape[1] // 2
    out_cols = _padded(2 * n_experts)
    rows = _tile_rows(d + out_cols + 2, d * out_cols, X.dtype.itemsize)
    weights = cupy.ascontiguousarray(weights, dtype=X.dtype)
    bias = cupy.ascontiguousarray(bias, dtype=X.dtype)
    if rows is None or n_experts > MAX_EXPERTS or not X.flags.c_contiguous:
        return mixture_mean(X @ weights, bias, k)
    out = cupy.empty(n, dtype=X.dtype)
    if n:
        name = template_name("skmoe_mixture_predict", X.dtype, n_experts, k, d, rows)
        compiled_kernel(_SOURCE, name)(
            (_blocks(n, rows),), (_THREADS,), (X, weights, bias, cupy.int64(n), out)
        )
    return out
