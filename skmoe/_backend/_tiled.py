"""Kernels that read a tall matrix once, a tile of rows at a time.

Each block copies tiles of rows into shared memory, the next tile in flight
(``cp.async``) while it works on the current one, forms their products with a
small weight matrix in register patches, then finishes each row where it
stands; nothing of size n x K goes to global memory unless it is the result.

- The gate's M-step objective. L-BFGS evaluates the soft-target softmax
  cross-entropy of ``Z @ W + b`` and its gradient ``Z.T @ (softmax * rowsum(T)
  - T)`` some 30 times per M-step. Written as library calls that is a GEMM
  writing the (n, K) logits, a pass writing the (n, K) gradient and a second
  product reading Z again, about 10 ms at 10M x 64, K=16. The kernel adds
  each tile's share of ``Z.T @ grad`` in T and the tiles' in float64, so the
  gradient keeps its digits at any n (a single float32 product over millions
  of rows does not, and L-BFGS then stalls); each block writes one row of
  sums, which the caller adds in one product. In float32 on sm_80 or later
  (d <= 64, K <= 32) the products run on tensor cores with each factor split
  in two TF32 parts (three products, float32's accuracy): on CUDA cores the
  kernel issued twice the instructions that hide behind its loads.
- The logistic experts' M-step objective: K softmaxes of C classes side by
  side, by the same kernel (each softmax over its own G >= C padded
  columns). Composed from library calls each evaluation wrote and re-read
  the (n, K, C) logits, gradient and probabilities: 23 ms at 10M x 32,
  K=8, C=10, against 9 ms.
- Thin products ``X @ W + b`` (the gate's logits, the linear experts'
  outputs), which cuBLAS runs at about half the speed of reading X.
- Prediction of the mixture of linear experts: the gate's logits and the
  experts' means of a tile of rows, then each row's top-k weighted mean.
"""

from functools import cache
from typing import NamedTuple

import numpy as np

from . import get_namespace, is_cupy_array, require_cupy
from ._kernels import (
    MAX_EXPERTS,
    ROW_HELPERS_SOURCE,
    compiled_kernel,
    mixture_mean,
    template_name,
)

_THREADS = 128
_BLOCKS_PER_SM = 4
# shared memory a block gets without opting into more
_STATIC_SHARED_BYTES = 48 * 1024
# Each thread keeps at most 2 patches (4 x 4) of Z.T @ grad in registers.
_MAX_PATCHES = 2 * _THREADS

_SOURCE = (
    ROW_HELPERS_SOURCE
    + r"""
#define SKMOE_THREADS 128  // every kernel here runs blocks of 128 threads
// Row stride of a shared tile of `size` columns: a multiple of 4, so that rows
// start 16-byte aligned, with an odd number of 16-byte chunks, so that 16-byte
// reads of 8 consecutive rows fall in distinct banks (float)
#define SKMOE_STRIDE(size) ((((size) + 3) / 4 | 1) * 4)

// The (D, N) matrix W into shared memory as (DP, NP), zero-padded.
template <typename T, int D, int DP, int N, int NP>
__device__ __forceinline__ void skmoe_load_weights(const T* W, T* ws) {
    for (int e = threadIdx.x; e < DP * NP; e += SKMOE_THREADS) {
        const int j = e / NP, k = e % NP;
        ws[e] = (j < D && k < N) ? W[j * N + k] : (T)0;
    }
}

// 16 bytes from global to shared memory, zeros where `valid` is false; on
// sm_80 and later an asynchronous copy (cp.async), which the caller commits
// and waits for, else a load and a store.
__device__ __forceinline__ void skmoe_copy16(void* dst, const void* src, bool valid) {
#if __CUDA_ARCH__ >= 800
    const unsigned address = static_cast<unsigned>(__cvta_generic_to_shared(dst));
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(address), "l"(src),
                 "r"(valid ? 16 : 0));
#else
    *reinterpret_cast<float4*>(dst) =
        valid ? *reinterpret_cast<const float4*>(src) : make_float4(0, 0, 0, 0);
#endif
}

__device__ __forceinline__ void skmoe_copies_commit() {
#if __CUDA_ARCH__ >= 800
    asm volatile("cp.async.commit_group;\n" ::);
#endif
}

// Waits until at most PENDING committed groups of this thread's copies are
// still in flight.
template <int PENDING>
__device__ __forceinline__ void skmoe_copies_wait() {
#if __CUDA_ARCH__ >= 800
    asm volatile("cp.async.wait_group %0;\n" ::"n"(PENDING));
#endif
}

// Rows [row0, row0 + TR) of the (n, D) matrix X into shared memory with row
// stride XS, zeros past n: in 16-byte copies where D and X's alignment allow
// (asynchronous: the kernels wait on these loads more than on anything else,
// and overlap them with the previous tile's arithmetic), else in scalar loads.
template <typename T, int D, int TR, int XS>
__device__ __forceinline__ void skmoe_copy_tile(const T* X, long long n, long long row0, T* xs) {
    constexpr int W = 16 / sizeof(T), VD = D / W;
    static_assert(XS % 4 == 0, "rows of the tile start 16-byte aligned");
    const long long rows = n - row0 < TR ? n - row0 : TR;
    if (D % W == 0 && reinterpret_cast<size_t>(X) % 16 == 0) {
#pragma unroll 4
        for (int e = threadIdx.x; e < TR * VD; e += SKMOE_THREADS) {
            const int r = e / VD, c = (e % VD) * W;
            const bool valid = r < rows;
            skmoe_copy16(xs + r * XS + c, X + (valid ? (row0 + r) * D + c : 0), valid);
        }
    } else {
#pragma unroll 8
        for (int e = threadIdx.x; e < TR * D; e += SKMOE_THREADS)
            xs[(e / D) * XS + e % D] = e < rows * D ? X[row0 * D + e] : (T)0;
    }
}

// Columns [D, DP) of the tile's rows, which its copies never write, to zero.
template <typename T, int D, int DP, int TR, int XS>
__device__ __forceinline__ void skmoe_zero_padding(T* xs) {
    if (DP > D)
        for (int e = threadIdx.x; e < TR * (DP - D); e += SKMOE_THREADS)
            xs[(e / (DP - D)) * XS + D + e % (DP - D)] = 0;
}

// Rows per patch of a tile's products: the most of 4, 2 and 1 that leaves a
// patch for every thread of the block.
#define SKMOE_PATCH_ROWS(TR, GROUPS)                                                              \
    ((TR) / 4 * (GROUPS) >= SKMOE_THREADS ? 4 : (TR) / 2 * (GROUPS) >= SKMOE_THREADS ? 2 : 1)

// The first row of patch `group` of a tile; a patch's R rows lie 8 apart so
// that the 8 rows a warp reads at once fall in distinct banks (row strides
// from SKMOE_STRIDE).
template <int R>
__device__ __forceinline__ int skmoe_patch_row(int group) {
    return 8 * R * (group / 8) + group % 8;
}

// One R x 4 patch of xs @ ws: l[i][c] += sum_j xs[r0 + 8 i][j] ws[j][k0 + c],
// over D columns (a multiple of 4) read 4 at a time in 16-byte loads; ws is
// (D, OUT).
template <typename T, int R, int D, int OUT, int XS>
__device__ __forceinline__ void skmoe_patch_product(const T* xs, const T* ws, int r0, int k0,
                                                    T l[R][4]) {
    static_assert(D % 4 == 0 && OUT % 4 == 0, "patch sizes");
#pragma unroll 2
    for (int j = 0; j < D; j += 4) {
        T x[R][4];
#pragma unroll
        for (int i = 0; i < R; ++i) skmoe_load_row<T, 4>(xs + (r0 + 8 * i) * XS + j, x[i]);
#pragma unroll
        for (int jj = 0; jj < 4; ++jj) {
            T w[4];
            skmoe_load_row<T, 4>(ws + (j + jj) * OUT + k0, w);
#pragma unroll
            for (int i = 0; i < R; ++i)
#pragma unroll
                for (int c = 0; c < 4; ++c) l[i][c] += x[i][jj] * w[c];
        }
    }
}

// out[r][k] = bias[k] + sum_j xs[r][j] ws[j][k] for the tile's TR rows and
// OUT outputs (bias zero past n_bias), a patch per thread at a time.
template <typename T, int D, int OUT, int TR, int XS, int OS>
__device__ __forceinline__ void skmoe_tile_products(const T* xs, const T* ws, const T* bias,
                                                    int n_bias, T* out) {
    constexpr int R = SKMOE_PATCH_ROWS(TR, OUT / 4);
    static_assert(TR % (8 * R) == 0, "tile rows");
    for (int p = threadIdx.x; p < (TR / R) * (OUT / 4); p += SKMOE_THREADS) {
        const int r0 = skmoe_patch_row<R>(p / (OUT / 4)), k0 = 4 * (p % (OUT / 4));
        T l[R][4];
#pragma unroll
        for (int c = 0; c < 4; ++c) {
            const T b = k0 + c < n_bias ? bias[k0 + c] : (T)0;
#pragma unroll
            for (int i = 0; i < R; ++i) l[i][c] = b;
        }
        skmoe_patch_product<T, R, D, OUT, XS>(xs, ws, r0, k0, l);
#pragma unroll
        for (int i = 0; i < R; ++i) skmoe_store_row<T, 4>(l[i], out + (r0 + 8 * i) * OS + k0);
    }
}

// Sum (or, MAX, maximum) of v over each aligned run of GROUP consecutive
// lanes (those that share a row, or a softmax); GROUP is a power of 2.
template <int GROUP, bool MAX, typename T>
__device__ __forceinline__ T skmoe_group_reduce(T v) {
#pragma unroll
    for (int offset = 1; offset < GROUP; offset *= 2) {
        const T other = __shfl_xor_sync(0xffffffffu, v, offset);
        v = MAX ? max(v, other) : v + other;
    }
    return v;
}

// The block's tiles of TR rows (block b takes tiles b, b + gridDim.x, ...):
// body(x, y, row0) for each, with the tile's rows of X and Y in shared memory
// (row strides XS and YS; DY = 0 for X alone). Each tile is copied into one of
// two buffers while the block works on the other; xs and ys hold two tiles
// each.
template <typename T, int DX, int XS, int DY, int YS, int TR, typename Body>
__device__ __forceinline__ void skmoe_tiles(const T* X, const T* Y, long long n, T* xs, T* ys,
                                            Body body) {
    const long long stride = (long long)gridDim.x * TR;
    long long row0 = (long long)blockIdx.x * TR;
    if (row0 < n) {
        skmoe_copy_tile<T, DX, TR, XS>(X, n, row0, xs);
        skmoe_copy_tile<T, DY, TR, YS>(Y, n, row0, ys);
    }
    skmoe_copies_commit();
    for (int cur = 0; row0 < n; row0 += stride, cur ^= 1) {
        if (row0 + stride < n) {  // the next tile, into the other buffers
            skmoe_copy_tile<T, DX, TR, XS>(X, n, row0 + stride, xs + (cur ^ 1) * TR * XS);
            skmoe_copy_tile<T, DY, TR, YS>(Y, n, row0 + stride, ys + (cur ^ 1) * TR * YS);
        }
        skmoe_copies_commit();
        skmoe_copies_wait<1>();  // this tile's copies have landed
        __syncthreads();
        body(xs + cur * TR * XS, ys + cur * TR * YS, row0);
        __syncthreads();  // this tile's buffers are no longer read
    }
}

extern __shared__ __align__(16) unsigned char skmoe_shared[];

// The block's sums in its row of `sums`, 1 + DP * KP + KP doubles: the loss,
// Z.T @ grad (DP x KP) and the bias gradient. The threads' partial sums are
// staged in shared memory (from the start of skmoe_shared, once the tiles are
// done with): the loss's per thread, the gradient's in SPLIT (DP x KP) parts,
// the bias's in BROWS rows of KP; each sum is then taken in a fixed order.
template <int DP, int KP, int SPLIT, int BROWS>
struct skmoe_block_sums {
    static constexpr int WIDTH = 1 + DP * KP + KP;
    double *loss, *grad, *bias;

    __device__ skmoe_block_sums()
        : loss(reinterpret_cast<double*>(skmoe_shared)),
          grad(loss + SKMOE_THREADS),
          bias(grad + SPLIT * DP * KP) {
        __syncthreads();  // the tiles are done with
    }

    __device__ void write(double* sums) const {
        __syncthreads();
        for (int e = threadIdx.x; e < WIDTH; e += SKMOE_THREADS) {
            double total = 0;
            if (e == 0)
                for (int i = 0; i < SKMOE_THREADS; ++i) total += loss[i];
            else if (e <= DP * KP)
                for (int p = 0; p < SPLIT; ++p) total += grad[p * DP * KP + e - 1];
            else
                for (int r = 0; r < BROWS; ++r) total += bias[r * KP + e - 1 - DP * KP];
            sums[(long long)blockIdx.x * WIDTH + e] = total;
        }
    }
};

// The soft-target softmax cross-entropy of Z @ W + b and its gradients, in
// float64 sums, on the block's tiles: the gate's M-step objective, or the
// logistic experts' (K / G softmaxes side by side). Each softmax runs over G
// consecutive of the K columns, of which the first C count (the rest are
// padding, whose targets and weights are zero); the gate's one softmax has
// G = KP and C = K. Per tile: the logits, R rows x 4 columns per thread, the
// G / 4 threads of a softmax forming its loss and gradient on the logits by
// shuffles (the gradient written over the targets); then Z.T @ grad, 4
// features x 4 columns per thread over a share of the tile's rows. The block
// writes its totals for the caller to add. KP, the padded number of columns,
// and G are powers of 2 of at least 4. Shared memory: two tiles of Z and of
// the values the rows come with (VALUES below), and W.
//
// VALUES says what those are:
// - SKMOE_SOFT_TARGETS: the (n, K) soft targets, over which the gradient on
//   the logits is written;
// - SKMOE_CLASS_LABELS: (n, LW) rows of each softmax's weight (K / G of them)
//   then the row's class, from which the targets are formed where they are
//   used (an (n, K) array of them is G times the bytes, and the kernel's
//   largest read); the gradient goes to a tile of its own;
// - SKMOE_HESSIAN: the loss's Hessian product, for Newton's conjugate
//   gradients: the values are q = w p (each row's weight times its
//   probabilities), W and b are a change V of the coefficients, and the
//   gradient's place takes Z.T @ (q (l - sum(q l) / w)) per softmax,
//   l = Z @ V + b and w = sum(q); the loss is 0.
// With GRAD = 0 (class labels only) the kernel forms the loss alone, for a
// line search's last trial, whose gradient nothing reads; the gradient's
// places are 0.
#define SKMOE_SOFT_TARGETS 0
#define SKMOE_CLASS_LABELS 1
#define SKMOE_HESSIAN 2
template <typename T, int K, int KP, int D, int TR, int G, int C, int VALUES, int LW, int GRAD>
__global__ void __launch_bounds__(SKMOE_THREADS, 4)
    skmoe_softmax_loss_grad(const T* __restrict__ Z, const T* __restrict__ values,
                            const T* __restrict__ W, const T* __restrict__ b, long long n,
                            double* sums) {
    constexpr bool HESSIAN = VALUES == SKMOE_HESSIAN, LABELS = VALUES == SKMOE_CLASS_LABELS;
    constexpr int THREADS = SKMOE_THREADS, DP = (D + 3) / 4 * 4;
    // the values' columns and row stride; the labels' weights, then the class
    constexpr int VW = LABELS ? LW : K, VS = SKMOE_STRIDE(LABELS ? LW : KP), LABEL = K / G;
    constexpr int XS = SKMOE_STRIDE(DP), KS = SKMOE_STRIDE(KP);
    constexpr int GROUP = KP / 4;  // threads per row in the logits' patches
    constexpr int R = SKMOE_PATCH_ROWS(TR, GROUP), PATCHES = (TR / R) * GROUP;
    constexpr int BASE = (DP / 4) * (KP / 4);
    // the tile's rows are split among SPLIT groups of threads when the
    // patches of Z.T @ grad are fewer than the threads
    constexpr int SPLIT = BASE >= THREADS ? 1 : THREADS / BASE;
    constexpr int GRAD_PATCHES = BASE * SPLIT;
    constexpr int SLOTS = (GRAD_PATCHES + THREADS - 1) / THREADS;
    static_assert(TR % (8 * R) == 0 && (KP & (KP - 1)) == 0 && KP >= 4 && GROUP <= 32, "sizes");
    static_assert((G & (G - 1)) == 0 && G >= 4 && G <= KP && C <= G, "softmax groups");
    static_assert(!LABELS || (K % G == 0 && LW % 4 == 0 && LW > LABEL), "labels' columns");
    static_assert(GRAD || LABELS, "the loss alone is formed from labels");
    // whether column k is one of a softmax's C, not padding
    auto counts = [](int k) { return k < K && k % G < C; };
    T* zs = reinterpret_cast<T*>(skmoe_shared);
    // the values, over which the gradient on the logits is written; with
    // labels, it has a tile of its own
    T* vs = zs + 2 * TR * XS;
    T* gs = vs + 2 * TR * VS;
    T* ws = gs + (LABELS ? TR * KS : 0);
    const int tid = threadIdx.x, k0 = 4 * (tid % GROUP);
    skmoe_load_weights<T, D, DP, K, KP>(W, ws);
    skmoe_zero_padding<T, D, DP, 2 * TR, XS>(zs);
    skmoe_zero_padding<T, VW, LABELS ? LW : KP, 2 * TR, VS>(vs);
    T bias[4];
#pragma unroll
    for (int c = 0; c < 4; ++c) bias[c] = k0 + c < K ? b[k0 + c] : (T)0;
    double total[SLOTS][4][4] = {}, loss = 0, bias_sum[4] = {};

    skmoe_tiles<T, D, XS, VW, VS, TR>(Z, values, n, zs, vs, [&](const T* z, T* t, long long) {
        T* grad = LABELS ? gs : t;  // the tile's gradient on the logits, row stride KS
        // Whole warps run the patch loop, for the shuffles; lanes past the
        // last patch redo earlier ones and keep nothing (a row's lanes are
        // all active or all not).
        for (int p0 = tid - tid % 32; p0 < PATCHES; p0 += THREADS) {
            const bool active = p0 + tid % 32 < PATCHES;
            const int r0 = skmoe_patch_row<R>((p0 + tid % 32) % PATCHES / GROUP);
            T l[R][4];
#pragma unroll
            for (int i = 0; i < R; ++i)
#pragma unroll
                for (int c = 0; c < 4; ++c) l[i][c] = bias[c];
            skmoe_patch_product<T, R, DP, KP, XS>(z, ws, r0, k0, l);
            T tile_loss = 0, tile_bias[4] = {};
#pragma unroll
            for (int i = 0; i < R; ++i) {
                T* row = grad + (r0 + 8 * i) * KS + k0;
                T v[4], top = skmoe_neg_inf<T>(), total_exp = 0, weight = 0;
                if (LABELS) {  // the targets: the softmax's weight at the row's class
                    const T* labels = t + (r0 + 8 * i) * VS;
                    const int softmax = k0 / G, label = static_cast<int>(labels[LABEL]);
                    const T w = softmax < LABEL ? labels[softmax] : (T)0;
#pragma unroll
                    for (int c = 0; c < 4; ++c) v[c] = (k0 + c) % G == label ? w : (T)0;
                } else {
                    skmoe_load_row<T, 4>(row, v);
                }
                if (HESSIAN) {  // v: q = w p, then the Hessian's product on the logits
                    T dot = 0;
#pragma unroll
                    for (int c = 0; c < 4; ++c) {
                        dot += counts(k0 + c) ? v[c] * l[i][c] : (T)0;
                        weight += v[c];
                    }
                    dot = skmoe_group_reduce<G / 4, false>(dot);
                    weight = skmoe_group_reduce<G / 4, false>(weight);
                    const T mean = weight > 0 ? dot / weight : (T)0;
#pragma unroll
                    for (int c = 0; c < 4; ++c) {
                        v[c] = counts(k0 + c) ? v[c] * (l[i][c] - mean) : (T)0;
                        tile_bias[c] += v[c];
                    }
                    if (active) skmoe_store_row<T, 4>(v, row);
                    continue;
                }
#pragma unroll
                for (int c = 0; c < 4; ++c)
                    if (counts(k0 + c)) top = max(top, l[i][c]);
                top = skmoe_group_reduce<G / 4, true>(top);
#pragma unroll
                for (int c = 0; c < 4; ++c) {
                    total_exp += counts(k0 + c) ? exp(l[i][c] - top) : (T)0;
                    weight += v[c];
                }
                // -inf for a softmax of padding alone, whose columns count nowhere
                const T lse = top + log(skmoe_group_reduce<G / 4, false>(total_exp));
                weight = skmoe_group_reduce<G / 4, false>(weight);
#pragma unroll
                for (int c = 0; c < 4; ++c) {
                    // v: the target, then the gradient on the logit (0 on padding)
                    const bool counted = counts(k0 + c);
                    tile_loss += counted ? v[c] * (lse - l[i][c]) : (T)0;
                    v[c] = counted ? exp(l[i][c] - lse) * weight - v[c] : (T)0;
                    tile_bias[c] += v[c];
                }
                if (active && GRAD) skmoe_store_row<T, 4>(v, row);
            }
            if (active) {
                loss += tile_loss;
#pragma unroll
                for (int c = 0; c < 4; ++c) bias_sum[c] += GRAD ? tile_bias[c] : (T)0;
            }
        }
        if (!GRAD) return;
        __syncthreads();

#pragma unroll
        for (int s = 0; s < SLOTS; ++s) {
            const int p = tid + s * THREADS;
            if (p >= GRAD_PATCHES) break;
            const int part = p / BASE, j0 = 4 * ((p % BASE) / (KP / 4)), g0 = 4 * (p % (KP / 4));
            T acc[4][4] = {};
            for (int r = part; r < TR; r += SPLIT) {
                T zr[4], g[4];
                skmoe_load_row<T, 4>(z + r * XS + j0, zr);
                skmoe_load_row<T, 4>(grad + r * KS + g0, g);
#pragma unroll
                for (int i = 0; i < 4; ++i)
#pragma unroll
                    for (int c = 0; c < 4; ++c) acc[i][c] += zr[i] * g[c];
            }
#pragma unroll
            for (int i = 0; i < 4; ++i)
#pragma unroll
                for (int c = 0; c < 4; ++c) total[s][i][c] += acc[i][c];
        }
    });

    const skmoe_block_sums<DP, KP, SPLIT, THREADS / GROUP> block;
    block.loss[tid] = loss;
#pragma unroll
    for (int c = 0; c < 4; ++c) block.bias[(tid / GROUP) * KP + k0 + c] = bias_sum[c];
#pragma unroll
    for (int s = 0; s < SLOTS; ++s) {
        const int p = tid + s * THREADS;
        if (p >= GRAD_PATCHES) break;
        const int part = p / BASE, j0 = 4 * ((p % BASE) / (KP / 4)), g0 = 4 * (p % (KP / 4));
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
            for (int c = 0; c < 4; ++c)
                block.grad[part * DP * KP + (j0 + i) * KP + g0 + c] = total[s][i][c];
    }
    block.write(sums);
}

// Products on tensor cores at float32 accuracy: each factor is split into a
// TF32 part (rounded to its top 11 bits) and the exact rest, which the tensor
// cores read to its top 11 bits, and three of the four products summed (the
// rests' product is below float32's rounding). Bit operations, not cvt: the
// split runs once per element of every fragment, as often as the products.
__device__ __forceinline__ void skmoe_split_tf32(float x, unsigned& big, unsigned& small) {
    big = (__float_as_uint(x) + 0x1000u) & 0xffffe000u;
    small = __float_as_uint(x - __uint_as_float(big));
}

// c += a b for a 16 x 8 fragment a, an 8 x 8 fragment b (m16n8k8 layouts).
__device__ __forceinline__ void skmoe_mma_tf32(float c[4], const unsigned a[4],
                                               const unsigned b[2]) {
#if __CUDA_ARCH__ >= 800
    asm volatile(
        "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
        "{%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#endif
}

// c += a b at float32 accuracy. The tensor cores' additions do not round to
// nearest, and a long sum kept in them drifts towards zero: the callers sum
// two k-steps at a time into a fresh fragment, then add it to their running
// sums in round-to-nearest additions.
__device__ __forceinline__ void skmoe_mma_3xtf32(float c[4], const unsigned a_big[4],
                                                 const unsigned a_small[4],
                                                 const unsigned b_big[2],
                                                 const unsigned b_small[2]) {
    skmoe_mma_tf32(c, a_small, b_big);  // the small terms first
    skmoe_mma_tf32(c, a_big, b_small);
    skmoe_mma_tf32(c, a_big, b_big);
}

// c += d for NT fragments.
template <int NT>
__device__ __forceinline__ void skmoe_add_fragments(float c[NT][4], const float d[NT][4]) {
#pragma unroll
    for (int j = 0; j < NT; ++j)
#pragma unroll
        for (int i = 0; i < 4; ++i) c[j][i] += d[j][i];
}

// A 16 x 8 fragment of the matrix at m (element (i, j) at m[i * RS + j * CS]),
// split for skmoe_mma_3xtf32.
template <int RS, int CS>
__device__ __forceinline__ void skmoe_fragment_a(const float* m, unsigned big[4],
                                                 unsigned small[4]) {
    const int g = threadIdx.x % 32 / 4, t = threadIdx.x % 4;
    skmoe_split_tf32(m[g * RS + t * CS], big[0], small[0]);
    skmoe_split_tf32(m[(g + 8) * RS + t * CS], big[1], small[1]);
    skmoe_split_tf32(m[g * RS + (t + 4) * CS], big[2], small[2]);
    skmoe_split_tf32(m[(g + 8) * RS + (t + 4) * CS], big[3], small[3]);
}

// The same gradients as skmoe_softmax_loss_grad for float32, its products on
// tensor cores (sm_80 and later; D <= 64, K <= 32). Each warp takes 16 rows
// of a tile of 64: their logits (a 16 x KP fragment), softmax, loss and
// gradient (the 4 threads of a fragment's row by shuffles); then each warp
// takes 16 of the features for all the tile's rows in Z.T @ grad. Shared
// memory: two tiles of Z and of the targets, and W split and laid out in the
// order of its fragments.
template <int K, int KP, int D>
__global__ void __launch_bounds__(SKMOE_THREADS, 4)
    skmoe_softmax_loss_grad_tf32(const float* __restrict__ Z, const float* __restrict__ targets,
                                 const float* __restrict__ W, const float* __restrict__ b,
                                 long long n, double* sums) {
    constexpr int TR = 64, NT = KP / 8, DP = (D + 15) / 16 * 16;
    constexpr int XS = DP + 4, KS = KP + 8;  // (fragment reads in few bank conflicts)
    static_assert(KP % 8 == 0 && DP <= 64, "sizes");
    float* zs = reinterpret_cast<float*>(skmoe_shared);
    float* ts = zs + 2 * TR * XS;  // the targets, then the gradient on the logits
    float4* wf = reinterpret_cast<float4*>(ts + 2 * TR * KS);  // [DP / 8][NT][32]
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane / 4, t = lane % 4;
    // W's fragments, each lane's (b0, b1) split into big and small parts
    for (int e = tid; e < DP / 8 * NT * 32; e += SKMOE_THREADS) {
        const int f = e / 32, j0 = 8 * (f / NT) + e % 4, k = 8 * (f % NT) + e % 32 / 4;
        unsigned big[2], small[2];
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const int j = j0 + 4 * h;
            skmoe_split_tf32(j < D && k < K ? W[j * K + k] : 0.0f, big[h], small[h]);
        }
        wf[e] = make_float4(__uint_as_float(big[0]), __uint_as_float(big[1]),
                            __uint_as_float(small[0]), __uint_as_float(small[1]));
    }
    skmoe_zero_padding<float, D, DP, 2 * TR, XS>(zs);
    skmoe_zero_padding<float, K, KP, 2 * TR, KS>(ts);
    float bias[NT][2];
#pragma unroll
    for (int j = 0; j < NT; ++j)
#pragma unroll
        for (int c = 0; c < 2; ++c) {
            const int k = 8 * j + 2 * t + c;
            bias[j][c] = k < K ? b[k] : 0.0f;
        }
    double total[NT][4] = {}, loss = 0, bias_sum[NT][2] = {};
    const bool features = warp < DP / 16;  // whether the warp has features in Z.T @ grad

    auto tile = [&](const float* z, float* tt, long long) {
        float l[NT][4];
#pragma unroll
        for (int j = 0; j < NT; ++j)
#pragma unroll
            for (int c = 0; c < 4; ++c) l[j][c] = bias[j][c % 2];
#pragma unroll
        for (int s0 = 0; s0 < DP / 8; s0 += 2) {
            float part[NT][4] = {};
#pragma unroll
            for (int s = s0; s < s0 + 2; ++s) {
                unsigned a_big[4], a_small[4];
                skmoe_fragment_a<XS, 1>(z + 16 * warp * XS + 8 * s, a_big, a_small);
#pragma unroll
                for (int j = 0; j < NT; ++j) {
                    const float4 w = wf[(s * NT + j) * 32 + lane];
                    const unsigned b_big[2] = {__float_as_uint(w.x), __float_as_uint(w.y)};
                    const unsigned b_small[2] = {__float_as_uint(w.z), __float_as_uint(w.w)};
                    skmoe_mma_3xtf32(part[j], a_big, a_small, b_big, b_small);
                }
            }
            skmoe_add_fragments<NT>(l, part);
        }
        // rows g and g + 8 of the warp's 16: l[j][h], l[j][2 + h] at expert 8 j + 2 t + h
#pragma unroll
        for (int half = 0; half < 2; ++half) {
            float* row = tt + (16 * warp + g + 8 * half) * KS + 2 * t;
            float top = skmoe_neg_inf<float>(), total_exp = 0, weight = 0;
            float2 v[NT];
#pragma unroll
            for (int j = 0; j < NT; ++j) {
                v[j] = *reinterpret_cast<const float2*>(row + 8 * j);
                weight += v[j].x + v[j].y;
#pragma unroll
                for (int c = 0; c < 2; ++c)
                    if (8 * j + 2 * t + c < K) top = max(top, l[j][2 * half + c]);
            }
            top = skmoe_group_reduce<4, true>(top);
            float e[NT][2];  // exp(logit - top), 0 past K
#pragma unroll
            for (int j = 0; j < NT; ++j)
#pragma unroll
                for (int c = 0; c < 2; ++c) {
                    e[j][c] = 8 * j + 2 * t + c < K ? exp(l[j][2 * half + c] - top) : 0.0f;
                    total_exp += e[j][c];
                }
            total_exp = skmoe_group_reduce<4, false>(total_exp);
            const float lse = top + log(total_exp);
            const float scale = skmoe_group_reduce<4, false>(weight) / total_exp;
            float tile_loss = 0;
#pragma unroll
            for (int j = 0; j < NT; ++j) {
                float* target = &v[j].x;  // then the gradient on the logit
#pragma unroll
                for (int c = 0; c < 2; ++c) {
                    tile_loss += target[c] * (lse - l[j][2 * half + c]);
                    target[c] = e[j][c] * scale - target[c];
                    bias_sum[j][c] += target[c];
                }
                *reinterpret_cast<float2*>(row + 8 * j) = v[j];
            }
            loss += tile_loss;
        }
        __syncthreads();

        if (features) {
            float acc[NT][4] = {};
            for (int s0 = 0; s0 < TR / 8; s0 += 2) {
                float part[NT][4] = {};
#pragma unroll
                for (int s = s0; s < s0 + 2; ++s) {
                    // Z.T's fragment: features 16 warp + (g, g + 8), rows 8 s + (t, t + 4)
                    unsigned a_big[4], a_small[4];
                    skmoe_fragment_a<1, XS>(z + 8 * s * XS + 16 * warp, a_big, a_small);
#pragma unroll
                    for (int j = 0; j < NT; ++j) {
                        const float* g_rows = tt + (8 * s + t) * KS + 8 * j + g;
                        unsigned b_big[2], b_small[2];
                        skmoe_split_tf32(g_rows[0], b_big[0], b_small[0]);
                        skmoe_split_tf32(g_rows[4 * KS], b_big[1], b_small[1]);
                        skmoe_mma_3xtf32(part[j], a_big, a_small, b_big, b_small);
                    }
                }
                skmoe_add_fragments<NT>(acc, part);
            }
#pragma unroll
            for (int j = 0; j < NT; ++j)
#pragma unroll
                for (int c = 0; c < 4; ++c) total[j][c] += acc[j][c];
        }
    };
    skmoe_tiles<float, D, XS, K, KS, TR>(Z, targets, n, zs, ts, tile);

    const skmoe_block_sums<DP, KP, 1, SKMOE_THREADS / 4> block;
    block.loss[tid] = loss;
#pragma unroll
    for (int j = 0; j < NT; ++j)
#pragma unroll
        for (int c = 0; c < 2; ++c) block.bias[(tid / 4) * KP + 8 * j + 2 * t + c] = bias_sum[j][c];
    // total[j][c]: feature 16 warp + g + 8 (c / 2), expert 8 j + 2 t + c % 2
    if (features)
#pragma unroll
        for (int j = 0; j < NT; ++j)
#pragma unroll
            for (int c = 0; c < 4; ++c)
                block.grad[(16 * warp + g + 8 * (c / 2)) * KP + 8 * j + 2 * t + c % 2] =
                    total[j][c];
    block.write(sums);
}

// X @ W + bias for the (n, D) matrix X and a thin (D, N) W, a tile of TR
// rows at a time in shared memory: epilogue(os, rows, row0) then reads the
// tile's products, row r's at os[r * OS], OS = SKMOE_STRIDE of N padded.
template <typename T, int N, int D, int TR, typename Epilogue>
__device__ __forceinline__ void skmoe_tiled_products(const T* __restrict__ X,
                                                     const T* __restrict__ W,
                                                     const T* __restrict__ bias, long long n,
                                                     Epilogue epilogue) {
    constexpr int NP = (N + 3) / 4 * 4, DP = (D + 3) / 4 * 4;
    constexpr int XS = SKMOE_STRIDE(DP), OS = SKMOE_STRIDE(NP);
    __shared__ __align__(16) T xs[2][TR][XS];
    __shared__ __align__(16) T os[TR][OS];
    __shared__ __align__(16) T ws[DP][NP];
    skmoe_load_weights<T, D, DP, N, NP>(W, &ws[0][0]);
    skmoe_zero_padding<T, D, DP, 2 * TR, XS>(&xs[0][0][0]);
    auto tile = [&](const T* x, T*, long long row0) {
        skmoe_tile_products<T, DP, NP, TR, XS, OS>(x, &ws[0][0], bias, N, &os[0][0]);
        __syncthreads();
        epilogue(&os[0][0], n - row0 < TR ? (int)(n - row0) : TR, row0);
    };
    skmoe_tiles<T, D, XS, 0, 4, TR>(X, X, n, &xs[0][0][0], &xs[0][0][0], tile);
}

// out = X @ W + bias, written out whole rows at a time.
template <typename T, int N, int D, int TR>
__global__ void __launch_bounds__(SKMOE_THREADS)
    skmoe_thin_product(const T* __restrict__ X, const T* __restrict__ W,
                       const T* __restrict__ bias, long long n, T* out) {
    constexpr int OS = SKMOE_STRIDE((N + 3) / 4 * 4);
    skmoe_tiled_products<T, N, D, TR>(X, W, bias, n, [&](const T* os, int rows, long long row0) {
        for (int e = threadIdx.x; e < rows * N; e += SKMOE_THREADS)
            out[row0 * N + e] = os[(e / N) * OS + e % N];
    });
}

// Each row's log-probability of its class y under each of K softmaxes of C
// consecutive columns of X @ W + bias (the logistic experts' log-likelihoods
// of the rows), at least log_floor (NaN kept): a thread per (row, softmax)
// of each tile's products. Nothing of size n x K x C is written.
template <typename T, int K, int C, int D, int TR>
__global__ void __launch_bounds__(SKMOE_THREADS)
    skmoe_class_log_lik(const T* __restrict__ X, const T* __restrict__ W,
                        const T* __restrict__ bias, const int* __restrict__ y, long long n,
                        T log_floor, T* out) {
    constexpr int OS = SKMOE_STRIDE((K * C + 3) / 4 * 4);
    skmoe_tiled_products<T, K * C, D, TR>(X, W, bias, n, [&](const T* os, int rows,
                                                             long long row0) {
        for (int e = threadIdx.x; e < rows * K; e += SKMOE_THREADS) {
            const T* l = os + (e / K) * OS + (e % K) * C;
            T top = l[0], total = 0;
#pragma unroll
            for (int c = 1; c < C; ++c) top = max(top, l[c]);
#pragma unroll
            for (int c = 0; c < C; ++c) total += exp(l[c] - top);
            const T v = l[y[row0 + e / K]] - top - log(total);
            out[row0 * K + e] = v < log_floor ? log_floor : v;  // NaN is not below
        }
    });
}

// Prediction of a mixture of linear experts: each row's gate logits and
// expert means from the (D, 2K) weights W and the bias, the logits first,
// then the weighted mean over the row's TOPK experts.
template <typename T, int K, int TOPK, int D, int TR>
__global__ void skmoe_mixture_predict(const T* __restrict__ X, const T* __restrict__ W,
                                      const T* __restrict__ bias, long long n, T* out) {
    constexpr int OUT = (2 * K + 3) / 4 * 4, DP = (D + 3) / 4 * 4;
    constexpr int XS = SKMOE_STRIDE(DP), OS = SKMOE_STRIDE(OUT);
    __shared__ __align__(16) T xs[TR][XS];
    __shared__ __align__(16) T os[TR][OS];
    __shared__ __align__(16) T ws[DP][OUT];
    skmoe_load_weights<T, D, DP, 2 * K, OUT>(W, &ws[0][0]);
    skmoe_zero_padding<T, D, DP, TR, XS>(&xs[0][0]);
    const long long stride = (long long)gridDim.x * TR;
    for (long long row0 = (long long)blockIdx.x * TR; row0 < n; row0 += stride) {
        // (the previous tile's xs was last read before its second barrier)
        skmoe_copy_tile<T, D, TR, XS>(X, n, row0, &xs[0][0]);
        skmoe_copies_commit();
        skmoe_copies_wait<0>();
        __syncthreads();
        skmoe_tile_products<T, DP, OUT, TR, XS, OS>(&xs[0][0], &ws[0][0], bias, 2 * K, &os[0][0]);
        __syncthreads();
        const int r = threadIdx.x;
        if (r < TR && row0 + r < n) {
            T l[K], m[K];
            skmoe_load_row<T, K>(&os[r][0], l);
            skmoe_load_row<T, K>(&os[r][K], m);
            out[row0 + r] = skmoe_top_k_mean<T, K, TOPK>(l, m);
        }
    }
}
"""
)


def _padded(size):
    return (size + 3) // 4 * 4


def _stride(size):
    """Row stride of a shared tile of ``size`` columns (SKMOE_STRIDE)."""
    return (_padded(size) // 4 | 1) * 4


def _tile_rows(row_values, fixed_values, itemsize):
    """Rows per tile: the most of 128, 96, 64 or 32 for which ``row_values``
    per row and ``fixed_values`` in all fit 48 KiB of shared memory, or None."""
    for rows in (128, 96, 64, 32):
        if (rows * row_values + fixed_values) * itemsize <= _STATIC_SHARED_BYTES:
            return rows
    return None


@cache
def _device_attributes(device_id):
    # asked once per device: ``attributes`` queries every attribute there is
    return require_cupy().cuda.Device(device_id).attributes


def _blocks(n, rows):
    """Blocks of the grid-stride loops: a few per multiprocessor, fewer for
    short inputs."""
    sm_count = _device_attributes(require_cupy().cuda.Device().id)["MultiProcessorCount"]
    return max(1, min(-(-n // rows), _BLOCKS_PER_SM * sm_count))


class _LossPlan(NamedTuple):
    """A loss kernel's instance and the sizes its caller needs."""

    name: str
    rows: int  # per tile
    dp: int  # features and experts as padded in the kernel's gradient
    kp: int
    shared_bytes: int
    loss_name: str | None = None  # the instance that forms the loss alone


def _plan(name, rows, dp, kp, tile_bytes, split, bias_rows, loss_name=None):
    # the block's sums are staged where its tiles were (skmoe_block_sums)
    sums_bytes = 8 * (_THREADS + split * dp * kp + bias_rows * kp)
    return _LossPlan(name, rows, dp, kp, max(tile_bytes, sums_bytes), loss_name)


# The plans, these two and those of thin_product and mixture_predict, are
# pure functions of the sizes, the dtype and what they need of the device
# (passed in), so that the kernels' source can be compiled at the names they
# give without a GPU.
def _tensor_core_plan(d, n_experts, dtype, compute_capability):
    """skmoe_softmax_loss_grad_tf32 where it applies: float32 on sm_80 or later
    (``compute_capability`` as an int, e.g. 80), d <= 64 and K <= 32."""
    if np.dtype(dtype) != np.float32 or d > 64 or n_experts > 32 or compute_capability < 80:
        return None
    rows, dp, kp = 64, -(-d // 16) * 16, -(-n_experts // 8) * 8
    tile_bytes = 4 * (2 * rows * (dp + 4) + 2 * rows * (kp + 8) + 2 * dp * kp)
    name = f"skmoe_softmax_loss_grad_tf32<{n_experts}, {kp}, {d}>"
    return _plan(name, rows, dp, kp, tile_bytes, 1, _THREADS // 4)


# What skmoe_softmax_loss_grad's rows come with (its VALUES)
SOFT_TARGETS, CLASS_LABELS, HESSIAN = 0, 1, 2


def _labels_width(n_columns, group):
    """Columns of the class labels' rows (LW): a weight per softmax, then the
    class, padded to a multiple of 4."""
    return _padded(n_columns // group + 1)


def _cuda_core_plan(
    d, n_columns, dtype, shared_optin, group=None, classes=None, values=SOFT_TARGETS
):
    """skmoe_softmax_loss_grad, or None where its tile or patches do not fit;
    ``shared_optin`` is the shared memory a block may opt into, in bytes (the
    device's MaxSharedMemoryPerBlockOptin). The softmaxes run over ``group``
    consecutive of the ``n_columns`` columns, of which the first ``classes``
    count; by default one softmax over all. ``values``: what the rows come
    with, SOFT_TARGETS, CLASS_LABELS or HESSIAN (see the kernel); for
    CLASS_LABELS the plan also names the instance that forms the loss alone."""
    itemsize = np.dtype(dtype).itemsize
    dp, kp = _padded(d), max(4, 1 << (n_columns - 1).bit_length())
    group, classes = (kp, n_columns) if group is None else (group, classes)
    width = _labels_width(n_columns, group) if values == CLASS_LABELS else 0
    # two tiles of Z and of the values; the labels' gradient in one more
    tiles = 2 * _stride(width) + _stride(kp) if width else 2 * _stride(kp)
    row_values, fixed_values = 2 * _stride(dp) + tiles, dp * kp
    rows = _tile_rows(row_values, fixed_values, itemsize)
    if rows is None:  # the smallest tile, in the shared memory a block may opt into
        rows = 32 if (32 * row_values + fixed_values) * itemsize <= shared_optin else None
    patches = (dp // 4) * (kp // 4)
    if rows is None or patches > _MAX_PATCHES:
        return None
    sizes = (n_columns, kp, d, rows, group, classes, values, width)
    name, loss_name = (
        template_name("skmoe_softmax_loss_grad", dtype, *sizes, gradient) for gradient in (1, 0)
    )
    split = 1 if patches >= _THREADS else _THREADS // patches
    tile_bytes = (rows * row_values + fixed_values) * itemsize
    loss_name = loss_name if values == CLASS_LABELS else None
    return _plan(name, rows, dp, kp, tile_bytes, split, _THREADS // (kp // 4), loss_name)


def _usable(Z):
    """Whether the loss kernels take ``Z``: a C-contiguous float CuPy array."""
    if not is_cupy_array(Z):
        return False
    cupy = require_cupy()
    return Z.dtype in (cupy.float32, cupy.float64) and Z.flags.c_contiguous


def _shared_optin():
    return _device_attributes(require_cupy().cuda.Device().id)["MaxSharedMemoryPerBlockOptin"]


def _loss_kernel(Z, values, plan):
    """``(W, b, gradient=True) -> totals``: the kernel of ``plan`` on the
    rows ``Z`` and the (n, ...) ``values`` they come with (see the kernel's
    VALUES), for (d, K) weights ``W`` and K biases ``b``; the totals are the
    grid's float64 sums, ``1 + dp * kp + kp`` of them in the plan's padded
    layout: the loss, the (dp, kp) gradient, the bias's. ``gradient=False``
    (where the plan has a ``loss_name``) forms the loss alone, the rest 0."""
    cupy = require_cupy()
    n = Z.shape[0]
    values = cupy.ascontiguousarray(values, dtype=Z.dtype)
    blocks = _blocks(n, plan.rows)
    sums = cupy.empty((blocks, 1 + plan.dp * plan.kp + plan.kp))
    ones = cupy.ones(blocks)

    @cache
    def instance(gradient):
        kernel = compiled_kernel(_SOURCE, plan.name if gradient else plan.loss_name)
        if plan.shared_bytes > _STATIC_SHARED_BYTES:
            kernel.max_dynamic_shared_size_bytes = plan.shared_bytes
        return kernel

    def totals(W, b, gradient=True):
        if n == 0:
            return cupy.zeros(sums.shape[1])
        kernel = instance(gradient)
        W = cupy.ascontiguousarray(cupy.asarray(W, dtype=Z.dtype))
        b = cupy.ascontiguousarray(cupy.asarray(b, dtype=Z.dtype))
        kernel(
            (blocks,),
            (_THREADS,),
            (Z, values, W, b, cupy.int64(n), sums),
            shared_mem=plan.shared_bytes,
        )
        return ones @ sums  # the blocks' sums, in one product

    return totals


def softmax_loss_terms(Z, targets):
    """``(coef, intercept) -> terms`` for the soft-target softmax cross-entropy
    of ``Z @ coef + intercept``, by one kernel; None for NumPy input or where
    the sizes are beyond it (the caller then composes the loss from library
    calls).

    Parameters
    ----------
    Z : ndarray or cupy.ndarray of shape (n, d); the kernel's: float32 or
        float64, C-contiguous
    targets : cupy.ndarray of shape (n, K)
        Non-negative weighted soft targets; ``targets[i].sum()`` is row ``i``'s
        weight, as in :func:`skmoe._math.softmax_cross_entropy`.

    Returns
    -------
    callable or None
        Its terms are one float64 array of ``1 + d * K + K`` values: the
        loss, its gradient with respect to ``coef`` (row-major), then with
        respect to ``intercept``; the layout of
        :func:`skmoe._optim.linear_loss`.
    """
    if not _usable(Z) or targets.shape[1] > MAX_EXPERTS:
        return None
    cupy = require_cupy()
    d, n_experts = Z.shape[1], targets.shape[1]
    capability = int(cupy.cuda.Device().compute_capability)
    plan = _tensor_core_plan(d, n_experts, Z.dtype, capability)
    plan = plan or _cuda_core_plan(d, n_experts, Z.dtype, _shared_optin())
    if plan is None:
        return None
    totals = _loss_kernel(Z, targets, plan)
    if (plan.dp, plan.kp) == (d, n_experts):
        return totals
    # where the padded sums hold the terms
    grad = np.arange(plan.dp * plan.kp).reshape(plan.dp, plan.kp)[:d, :n_experts]
    bias = plan.dp * plan.kp + np.arange(n_experts)
    index = cupy.asarray(np.concatenate([[0], 1 + grad.ravel(), 1 + bias]))
    return lambda coef, intercept: totals(coef, intercept)[index]


# Columns per launch of the logistic experts' softmaxes. At 128 (8 experts of
# 10 classes, in 16 columns each) each thread keeps two patches of Z.T @ grad
# and its registers spill: at 10M x 32 in float32 one launch of 128 columns
# took 13.3 ms, two of 64 columns 9.0 ms (H100).
_CLASS_COLUMNS = 64


def _class_launches(d, n_groups, group, n_classes, dtype, values):
    """The fewest launches of skmoe_softmax_loss_grad, of at most
    ``_CLASS_COLUMNS`` columns each where a softmax fits in that, whose
    plans take ``n_groups`` softmaxes of ``group`` columns between them:
    ``(first, last + 1, plan)`` of each, or None where not even one fits."""
    optin = _shared_optin()

    def plan(softmaxes):
        return _cuda_core_plan(d, softmaxes * group, dtype, optin, group, n_classes, values)

    per = max(1, min(n_groups, _CLASS_COLUMNS // group))
    per = -(-n_groups // -(-n_groups // per))  # as even a share as that many launches allow
    while per >= 1:
        if plan(per) is not None:
            bounds = [(k, min(k + per, n_groups)) for k in range(0, n_groups, per)]
            return [(k0, k1, plan(k1 - k0)) for k0, k1 in bounds]
        per -= 1
    return None


def _class_kernel_terms(Z, n_groups, n_classes, tile_values, values):
    """``(coef, intercept) -> terms`` of skmoe_softmax_loss_grad over
    ``n_groups`` softmaxes of ``n_classes`` side by side, or None where the
    sizes are beyond it. Each softmax's columns are padded to ``G``, a power
    of 2 of at least 4, and a launch takes as many softmaxes as fit
    ``_CLASS_COLUMNS``: one read of ``Z`` per launch. ``tile_values(k0, k1,
    G)`` gives the values (CLASS_LABELS or HESSIAN: see the kernel) that the
    launch of softmaxes k0 to k1 reads beside the rows."""
    if not _usable(Z):
        return None
    cupy = require_cupy()
    d, group = Z.shape[1], max(4, 1 << (n_classes - 1).bit_length())
    launches = _class_launches(d, n_groups, group, n_classes, Z.dtype, values)
    if launches is None:
        return None

    def padded(a, k0, k1):
        # columns k0 C to k1 C of a (rows, K C) array, each softmax padded to G
        rows = len(a)
        out = cupy.zeros((rows, k1 - k0, group), dtype=Z.dtype)
        out[:, :, :n_classes] = a[:, k0 * n_classes : k1 * n_classes].reshape(
            rows, k1 - k0, n_classes
        )
        return out.reshape(rows, (k1 - k0) * group)

    kernels = [
        (k0, k1, plan, _loss_kernel(Z, tile_values(k0, k1, group), plan))
        for k0, k1, plan in launches
    ]

    def terms(coef, intercept, gradient=True):
        coef, intercept = cupy.asarray(coef), cupy.asarray(intercept)
        loss, grads, biases = 0.0, [], []
        for k0, k1, plan, totals in kernels:
            total = totals(padded(coef, k0, k1), padded(intercept[None], k0, k1)[0], gradient)
            loss += total[:1]
            if gradient:
                width, cut = (k1 - k0) * group, 1 + plan.dp * plan.kp
                grad = total[1:cut].reshape(plan.dp, plan.kp)[:d, :width]
                grads.append(grad.reshape(d, -1, group)[:, :, :n_classes].reshape(d, -1))
                biases.append(total[cut : cut + width].reshape(-1, group)[:, :n_classes].ravel())
        if not gradient:
            return loss
        return cupy.concatenate([loss, cupy.hstack(grads).ravel(), *biases])

    return terms


def class_softmax_loss_terms(Z, y, weights, n_classes):
    """``(coef, intercept) -> terms`` for K weighted multinomial log-losses
    side by side, the logistic experts' objective: the logits ``Z @ coef +
    intercept`` in K blocks of ``n_classes`` columns, block ``k``'s softmax
    against class ``y[i]`` with weight ``weights[i, k]``, by one kernel per
    launch that writes nothing of size n x K x C; None for NumPy input or
    where the sizes are beyond the kernel.

    Parameters
    ----------
    Z : ndarray or cupy.ndarray of shape (n, d); the kernel's: float32 or
        float64, C-contiguous
    y : cupy.ndarray of shape (n,)
        Class indices.
    weights : cupy.ndarray of shape (n, K)
        Each row's non-negative weight in each block.
    n_classes : int

    Returns
    -------
    callable or None
        Its terms are one float64 array of ``1 + d * K C + K C`` values, in
        the layout of :func:`softmax_loss_terms` with the K C columns of the
        logits as its experts; with ``gradient=False``, of the loss alone
        (one value, by a kernel that forms no gradient).
    """
    xp = get_namespace(weights)

    def labels(k0, k1, group):
        # each softmax's weight, then the class (a float holds it exactly)
        out = xp.zeros((len(Z), _labels_width((k1 - k0) * group, group)), dtype=Z.dtype)
        out[:, : k1 - k0] = weights[:, k0:k1]
        out[:, k1 - k0] = y
        return out

    return _class_kernel_terms(Z, weights.shape[1], n_classes, labels, CLASS_LABELS)


def class_softmax_hessian_product(Z, weights, proba):
    """``(coef, intercept) -> terms`` for the Hessian of the losses of
    :func:`class_softmax_loss_terms` at the blocks' probabilities ``proba``
    (n, K, C) and row weights ``weights`` (n, K), times a change of the
    coefficients and intercepts: the terms' gradient places hold ``Z1.T @ (w
    (diag(p) - p p') (Z1 @ change))`` per block (their loss place is 0); None
    where :func:`class_softmax_loss_terms` would be."""
    n_classes, xp = proba.shape[2], get_namespace(weights)

    def weighted(k0, k1, group):
        # w p, padded to G columns
        out = xp.zeros((len(Z), k1 - k0, group), dtype=Z.dtype)
        out[:, :, :n_classes] = weights[:, k0:k1, None] * proba[:, k0:k1]
        return out.reshape(len(Z), (k1 - k0) * group)

    return _class_kernel_terms(Z, weights.shape[1], n_classes, weighted, HESSIAN)


def _thin_product_plan(d, n_out, dtype):
    """``(name, rows)``: the instance of skmoe_thin_product that
    :func:`thin_product` runs and its rows per tile, or None where the sizes
    are beyond it."""
    rows = _tile_rows(
        2 * _stride(d) + _stride(n_out), _padded(d) * _padded(n_out), np.dtype(dtype).itemsize
    )
    if rows is None or n_out > 2 * MAX_EXPERTS:
        return None
    return template_name("skmoe_thin_product", dtype, n_out, d, rows), rows


def thin_product(X, W, bias):
    """``X @ W + bias`` for a tall C-contiguous X and a thin W (at most
    ``2 * MAX_EXPERTS`` columns), reading X once, a tile of rows at a time;
    None where the sizes are beyond the kernel. cuBLAS takes twice the time
    of reading X on such products (n x 64 times 64 x 16).
    """
    cupy = require_cupy()
    (n, d), n_out = X.shape, W.shape[1]
    if X.dtype not in (cupy.float32, cupy.float64) or not X.flags.c_contiguous:
        return None
    plan = _thin_product_plan(d, n_out, X.dtype)
    if plan is None:
        return None
    name, rows = plan
    W = cupy.ascontiguousarray(W, dtype=X.dtype)
    bias = cupy.ascontiguousarray(cupy.broadcast_to(cupy.asarray(bias, dtype=X.dtype), (n_out,)))
    out = cupy.empty((n, n_out), dtype=X.dtype)
    if n:
        compiled_kernel(_SOURCE, name)(
            (_blocks(n, rows),), (_THREADS,), (X, W, bias, cupy.int64(n), out)
        )
    return out


def _class_log_lik_plan(d, n_experts, n_classes, dtype):
    """``(name, rows)``: the instance of skmoe_class_log_lik that
    :func:`class_log_lik` runs and its rows per tile, or None where the
    sizes are beyond it."""
    n_out = _padded(n_experts * n_classes)
    rows = _tile_rows(2 * _stride(d) + _stride(n_out), _padded(d) * n_out, np.dtype(dtype).itemsize)
    if rows is None:
        return None
    return template_name("skmoe_class_log_lik", dtype, n_experts, n_classes, d, rows), rows


def class_log_lik(X, coef, intercept, y, floor):
    """``log max(P_k(y_i | x_i), floor)`` for each row and each of K
    multinomial logistic models, by one kernel that writes only the (n, K)
    result: no logits or probabilities of size n x K x C, which the composed
    path forms (at 10M rows, 8 experts and 10 classes, 3.2 GB in float32).

    Parameters
    ----------
    X : cupy.ndarray of shape (n, d); the kernel's: float32 or float64,
        C-contiguous
    coef : cupy.ndarray of shape (K, C, d)
    intercept : cupy.ndarray of shape (K, C)
    y : cupy.ndarray of shape (n,)
        Class indices, in [0, C).
    floor : float

    Returns
    -------
    cupy.ndarray of shape (n, K), or None where X is not C-contiguous or the
    sizes are beyond the kernel.
    """
    n_experts, n_classes, d = coef.shape
    plan = _class_log_lik_plan(d, n_experts, n_classes, X.dtype)
    if plan is None or not _usable(X):
        return None
    cupy = require_cupy()
    name, rows = plan
    W = cupy.ascontiguousarray(coef.reshape(n_experts * n_classes, d).T, dtype=X.dtype)
    bias = cupy.ascontiguousarray(intercept.ravel(), dtype=X.dtype)
    out = cupy.empty((len(X), n_experts), dtype=X.dtype)
    if len(X):
        args = (X, W, bias, cupy.asarray(y, dtype=cupy.int32), cupy.int64(len(X)))
        compiled_kernel(_SOURCE, name)(
            (_blocks(len(X), rows),), (_THREADS,), (*args, X.dtype.type(np.log(floor)), out)
        )
    return out


def _mixture_predict_plan(d, n_experts, k, dtype):
    """``(name, rows)``: the instance of skmoe_mixture_predict that
    :func:`mixture_predict` runs and its rows per tile, or None where the
    sizes are beyond it."""
    out_cols = _padded(2 * n_experts)
    rows = _tile_rows(
        _stride(d) + _stride(out_cols), _padded(d) * out_cols, np.dtype(dtype).itemsize
    )
    if rows is None or n_experts > MAX_EXPERTS:
        return None
    return template_name("skmoe_mixture_predict", dtype, n_experts, k, d, rows), rows


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
    plan = _mixture_predict_plan(d, n_experts, k, X.dtype)
    weights = cupy.ascontiguousarray(weights, dtype=X.dtype)
    bias = cupy.ascontiguousarray(bias, dtype=X.dtype)
    if plan is None or not X.flags.c_contiguous:
        return mixture_mean(X @ weights, bias, k)
    name, rows = plan
    out = cupy.empty(n, dtype=X.dtype)
    if n:
        compiled_kernel(_SOURCE, name)(
            (_blocks(n, rows),), (_THREADS,), (X, weights, bias, cupy.int64(n), out)
        )
    return out
