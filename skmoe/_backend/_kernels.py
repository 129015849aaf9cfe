"""CUDA kernels for the gate and the E-step, one thread per row.

K and k are template parameters, compiled for each (dtype, K, k) on first
use: the loops then unroll and a row's K logits and its top-k list sit in
registers, the top-k choice is k compare-and-swaps per logit (no sort), and
each kernel reads its inputs once and writes only what it returns. Under top-k
nothing of size n x K is written, except the dense posterior the gate's M-step
needs. Every kernel has a NumPy reference in the tests.
"""

import math
from functools import cache

import numpy as np

from . import require_cupy

# Larger K would spill the per-row arrays out of registers; the callers fall
# back to plain CuPy operations there.
MAX_EXPERTS = 64

# Shared with the other kernel modules: -inf, a row of K values in 16-byte
# accesses, a row's top-k and the mixture's mean over it.
ROW_HELPERS_SOURCE = r"""
// NVRTC has no INFINITY macro
template <typename T> __device__ T skmoe_neg_inf();
template <> __device__ float skmoe_neg_inf<float>() { return __int_as_float(0xff800000); }
template <> __device__ double skmoe_neg_inf<double>() {
    return __longlong_as_double(0xfff0000000000000ULL);
}

// A row of K values through 16-byte loads and stores where K allows it: one
// thread's row is contiguous, and scalar accesses would take 16 instructions
// (and as many partial cache-line transactions per warp) for a row of 16.
template <typename T> struct skmoe_vec;
template <> struct skmoe_vec<float> {
    typedef float4 type;
    static const int width = 4;
    __device__ static void split(const float4& v, float* d) {
        d[0] = v.x; d[1] = v.y; d[2] = v.z; d[3] = v.w;
    }
    __device__ static float4 join(const float* s) { return make_float4(s[0], s[1], s[2], s[3]); }
};
template <> struct skmoe_vec<double> {
    typedef double2 type;
    static const int width = 2;
    __device__ static void split(const double2& v, double* d) { d[0] = v.x; d[1] = v.y; }
    __device__ static double2 join(const double* s) { return make_double2(s[0], s[1]); }
};

template <typename T, int K>
__device__ void skmoe_load_row(const T* src, T* dst) {
    typedef skmoe_vec<T> V;
    if (K % V::width == 0) {
#pragma unroll
        for (int q = 0; q < K / V::width; ++q)
            V::split(reinterpret_cast<const typename V::type*>(src)[q], dst + q * V::width);
    } else {
#pragma unroll
        for (int j = 0; j < K; ++j) dst[j] = src[j];
    }
}

template <typename T, int K>
__device__ void skmoe_store_row(const T* src, T* dst) {
    typedef skmoe_vec<T> V;
    if (K % V::width == 0) {
#pragma unroll
        for (int q = 0; q < K / V::width; ++q)
            reinterpret_cast<typename V::type*>(dst)[q] = V::join(src + q * V::width);
    } else {
#pragma unroll
        for (int j = 0; j < K; ++j) dst[j] = src[j];
    }
}

// The row's TOPK largest logits, descending, with their experts. K and TOPK
// are compile-time constants, so the loops unroll and the lists stay in
// registers. Each logit sinks into place by swaps; a later expert never
// displaces an equal earlier one.
template <typename T, int K, int TOPK>
__device__ void skmoe_top_k(const T* row, T* val, int* idx) {
#pragma unroll
    for (int p = 0; p < TOPK; ++p) { val[p] = skmoe_neg_inf<T>(); idx[p] = p; }
#pragma unroll
    for (int j = 0; j < K; ++j) {
        T v = row[j];
        int vi = j;
#pragma unroll
        for (int p = 0; p < TOPK; ++p) {
            if (v > val[p]) {
                T tv = val[p]; val[p] = v; v = tv;
                int ti = idx[p]; idx[p] = vi; vi = ti;
            }
        }
    }
}

// The mixture's mean over the row's TOPK experts: a softmax over their gate
// logits l weighing their means m.
template <typename T, int K, int TOPK>
__device__ T skmoe_top_k_mean(const T* l, const T* m) {
    T val[TOPK];
    int idx[TOPK];
    skmoe_top_k<T, K, TOPK>(l, val, idx);
    T total = 0, mean = 0;
#pragma unroll
    for (int p = 0; p < TOPK; ++p) {
        T mp = m[0];
#pragma unroll
        for (int j = 1; j < K; ++j) mp = (idx[p] == j) ? m[j] : mp;  // no dynamic index
        T e = exp(val[p] - val[0]);
        total += e;
        mean += e * mp;
    }
    return mean / total;
}
"""

_SOURCE = (
    ROW_HELPERS_SOURCE
    + r"""
// Softmax cross-entropy of one row's logits l against its soft targets t:
// returns the row's loss -sum_j t_j log softmax(l)_j, and overwrites l with
// softmax(l) and t with the gradient softmax(l) sum_j t_j - t.
template <typename T, int K>
__device__ T skmoe_softmax_xent_row(T* l, T* t) {
    T top = l[0];
#pragma unroll
    for (int j = 1; j < K; ++j) top = max(top, l[j]);
    T total = 0;
#pragma unroll
    for (int j = 0; j < K; ++j) total += exp(l[j] - top);
    const T lse = top + log(total);
    T weight = 0, loss = 0;
#pragma unroll
    for (int j = 0; j < K; ++j) {
        weight += t[j];
        loss -= t[j] * (l[j] - lse);
        l[j] = exp(l[j] - lse);
    }
#pragma unroll
    for (int j = 0; j < K; ++j) t[j] = l[j] * weight - t[j];
    return loss;
}

// Gate: softmax over each row's TOPK largest logits. Writes probabilities and
// expert indices, (n, TOPK) each, in descending order of probability.
template <typename T, int K, int TOPK>
__global__ void skmoe_gate_top_k(const T* logits, long long n, T* proba, int* index) {
    long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (i >= n) return;
    T row[K];
    skmoe_load_row<T, K>(logits + i * K, row);
    T val[TOPK];
    int idx[TOPK];
    skmoe_top_k<T, K, TOPK>(row, val, idx);
    T top = val[0], total = 0;
#pragma unroll
    for (int p = 0; p < TOPK; ++p) { val[p] = exp(val[p] - top); total += val[p]; }
#pragma unroll
    for (int p = 0; p < TOPK; ++p) {
        proba[i * TOPK + p] = val[p] / total;
        index[i * TOPK + p] = idx[p];
    }
}

// E-step. From the gate's logits and the experts' log-likelihoods of each
// row: the row's log-likelihood, the responsibilities of the row's TOPK
// experts with their indices if resp is not null, and the posterior under
// the dense gate (what the gate's M-step fits) if dense_resp is not null.
template <typename T, int K, int TOPK>
__global__ void skmoe_e_step(const T* logits, const T* log_lik, long long n, T* resp,
                             int* index, T* row_log_lik, T* dense_resp) {
    long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (i >= n) return;
    T l[K], ll[K];
    skmoe_load_row<T, K>(logits + i * K, l);
    skmoe_load_row<T, K>(log_lik + i * K, ll);
    T val[TOPK];
    int idx[TOPK];
    skmoe_top_k<T, K, TOPK>(l, val, idx);
    // log gate of the selected: l_j - logsumexp over the selection
    T gate_sum = 0;
#pragma unroll
    for (int p = 0; p < TOPK; ++p) gate_sum += exp(val[p] - val[0]);
    T log_norm = val[0] + log(gate_sum);
    T joint[TOPK];
    T top = skmoe_neg_inf<T>();
#pragma unroll
    for (int p = 0; p < TOPK; ++p) {
        T lj = ll[0];
#pragma unroll
        for (int j = 1; j < K; ++j) lj = (idx[p] == j) ? ll[j] : lj;  // no dynamic index
        joint[p] = val[p] - log_norm + lj;
        top = max(top, joint[p]);
    }
    T total = 0;
#pragma unroll
    for (int p = 0; p < TOPK; ++p) total += exp(joint[p] - top);
    T lse = top + log(total);
    row_log_lik[i] = lse;
    if (resp != nullptr) {
#pragma unroll
        for (int p = 0; p < TOPK; ++p) {
            resp[i * TOPK + p] = exp(joint[p] - lse);
            index[i * TOPK + p] = idx[p];
        }
    }
    if (dense_resp == nullptr) return;
    // the dense posterior: softmax over all K of l_j + log_lik_j
    T dense_top = skmoe_neg_inf<T>();
#pragma unroll
    for (int j = 0; j < K; ++j) { l[j] += ll[j]; dense_top = max(dense_top, l[j]); }
    T dense_total = 0;
#pragma unroll
    for (int j = 0; j < K; ++j) { l[j] = exp(l[j] - dense_top); dense_total += l[j]; }
#pragma unroll
    for (int j = 0; j < K; ++j) l[j] /= dense_total;
    skmoe_store_row<T, K>(l, dense_resp + i * K);
}

// Softmax cross-entropy against soft targets, row by row: the row's loss
// -sum_j t_j log softmax(l)_j, its gradient softmax(l) sum_j t_j - t with
// respect to the logits and, if proba is not null, the softmax itself.
template <typename T, int K>
__global__ void skmoe_softmax_xent(const T* logits, const T* targets, long long n, T* grad,
                                   T* proba, T* row_loss) {
    long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (i >= n) return;
    T l[K], t[K];
    skmoe_load_row<T, K>(logits + i * K, l);
    skmoe_load_row<T, K>(targets + i * K, t);
    row_loss[i] = skmoe_softmax_xent_row<T, K>(l, t);
    if (proba != nullptr) skmoe_store_row<T, K>(l, proba + i * K);
    skmoe_store_row<T, K>(t, grad + i * K);
}

// Softmax of each row of K logits: the experts' class probabilities, one
// row per (row, expert) pair.
template <typename T, int K>
__global__ void skmoe_softmax(const T* logits, long long n, T* proba) {
    long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (i >= n) return;
    T l[K];
    skmoe_load_row<T, K>(logits + i * K, l);
    T top = l[0];
#pragma unroll
    for (int j = 1; j < K; ++j) top = max(top, l[j]);
    T total = 0;
#pragma unroll
    for (int j = 0; j < K; ++j) { l[j] = exp(l[j] - top); total += l[j]; }
#pragma unroll
    for (int j = 0; j < K; ++j) l[j] /= total;
    skmoe_store_row<T, K>(l, proba + i * K);
}

// Prediction of a mixture of regression experts: from each row's gate logits
// and expert means, side by side in one (n, 2K) array (the output of one GEMM)
// and offset by ``bias`` (2K), the gate-weighted mean over the row's TOPK
// experts.
template <typename T, int K, int TOPK>
__global__ void skmoe_mixture_mean(const T* logits_means, const T* bias, long long n, T* out) {
    long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (i >= n) return;
    T l[K], m[K];
    skmoe_load_row<T, K>(logits_means + i * 2 * K, l);
    skmoe_load_row<T, K>(logits_means + i * 2 * K + K, m);
#pragma unroll
    for (int j = 0; j < K; ++j) { l[j] += bias[j]; m[j] += bias[K + j]; }
    out[i] = skmoe_top_k_mean<T, K, TOPK>(l, m);
}
"""
)

_BLOCK = 256


@cache
def _module(device_id, code, name):
    cupy = require_cupy()
    with cupy.cuda.Device(device_id):
        return cupy.RawModule(code=code, options=("-std=c++14",), name_expressions=(name,))


def compiled_kernel(code, name):
    """The kernel ``name`` (a template instance, e.g. ``"f<float, 16>"``) of the
    CUDA source ``code``, compiled on first use for the current device (CuPy
    also caches the binaries on disk)."""
    cupy = require_cupy()
    return _module(cupy.cuda.Device().id, code, name).get_function(name)


def template_name(name, dtype, *sizes):
    """The instance of the kernel template ``name`` for ``dtype`` (float32 or
    float64) and compile-time ``sizes``: ``"name<float, 16, 2>"``. CuPy's
    dtypes are NumPy's, so this needs no CuPy (nor a GPU)."""
    ctype = "float" if np.dtype(dtype) == np.float32 else "double"
    return f"{name}<{', '.join([ctype, *map(str, sizes)])}>"


# The instances the wrappers below run, for (dtype, K, k ...); apart so that
# the kernels' source can be compiled at these names without a GPU.
def _gate_top_k_name(dtype, n_experts, k):
    """The instance of skmoe_gate_top_k that :func:`gate_top_k` runs."""
    return template_name("skmoe_gate_top_k", dtype, n_experts, k)


def _e_step_name(dtype, n_experts, k):
    """The instance of skmoe_e_step that :func:`e_step` runs."""
    return template_name("skmoe_e_step", dtype, n_experts, k)


def _softmax_xent_name(dtype, n_experts):
    """The instance of skmoe_softmax_xent that
    :func:`softmax_cross_entropy_kernel` runs."""
    return template_name("skmoe_softmax_xent", dtype, n_experts)


def _softmax_name(dtype, n_columns):
    """The instance of skmoe_softmax that :func:`softmax_kernel` runs."""
    return template_name("skmoe_softmax", dtype, n_columns)


def _mixture_mean_name(dtype, n_experts, k):
    """The instance of skmoe_mixture_mean that :func:`mixture_mean` runs."""
    return template_name("skmoe_mixture_mean", dtype, n_experts, k)


def _check(logits, k):
    n, K = logits.shape
    if K > MAX_EXPERTS:
        raise ValueError(f"the CUDA kernels take at most {MAX_EXPERTS} experts, got {K}.")
    if not 1 <= k <= K:
        raise ValueError(f"k must be in [1, {K}], got {k}.")
    return n, K


def _grid(n):
    return ((n + _BLOCK - 1) // _BLOCK,), (_BLOCK,)


def gate_top_k(logits, k):
    """Softmax over each row's ``k`` largest logits.

    Parameters
    ----------
    logits : cupy.ndarray of shape (n, K), float32 or float64, C-contiguous
    k : int

    Returns
    -------
    proba : cupy.ndarray of shape (n, k)
        Descending within each row; rows sum to 1.
    index : cupy.ndarray of shape (n, k), int32
        The expert of each probability.
    """
    cupy = require_cupy()
    n, K = _check(logits, k)
    logits = cupy.ascontiguousarray(logits)
    proba = cupy.empty((n, k), dtype=logits.dtype)
    index = cupy.empty((n, k), dtype=cupy.int32)
    if n:
        compiled_kernel(_SOURCE, _gate_top_k_name(logits.dtype, K, k))(
            *_grid(n), (logits, cupy.int64(n), proba, index)
        )
    return proba, index


def e_step(logits, log_lik, k, *, dense=False, selected=True):
    """Responsibilities under a top-``k`` gate, fused.

    Parameters
    ----------
    logits, log_lik : cupy.ndarray of shape (n, K)
        Gate logits and the experts' log-likelihoods of each row, one dtype
        (float32 or float64).
    k : int
    dense : bool
        Also return the posterior under the dense gate, shape (n, K).
    selected : bool
        Return the selected experts' responsibilities and indices; False,
        where the caller needs only the dense posterior (``k`` = K), leaves
        them unwritten and returns None for both.

    Returns
    -------
    resp : (n, k) responsibilities of the selected experts, rows sum to 1
    index : (n, k) int32, the selected experts, by descending gate logit
    row_log_lik : (n,) the row's log-likelihood under the top-k mixture
    dense_resp : (n, K) or None
    """
    cupy = require_cupy()
    n, K = _check(logits, k)
    dtype = logits.dtype
    logits, log_lik = cupy.ascontiguousarray(logits), cupy.ascontiguousarray(log_lik, dtype=dtype)
    resp = cupy.empty((n, k), dtype=dtype) if selected else None
    index = cupy.empty((n, k), dtype=cupy.int32) if selected else None
    row_log_lik = cupy.empty(n, dtype=dtype)
    dense_resp = cupy.empty((n, K), dtype=dtype) if dense else None
    if n:
        null = cupy.uint64(0)
        compiled_kernel(_SOURCE, _e_step_name(dtype, K, k))(
            *_grid(n),
            (
                logits,
                log_lik,
                cupy.int64(n),
                null if resp is None else resp,
                null if index is None else index,
                row_log_lik,
                null if dense_resp is None else dense_resp,
            ),
        )
    return resp, index, row_log_lik, dense_resp


def softmax_cross_entropy_kernel(logits, targets):
    """:func:`skmoe._math.softmax_cross_entropy` of 2-D CuPy arrays, in one pass.

    Returns the loss (a 0-d array), its gradient with respect to ``logits``
    and ``softmax(logits)``.
    """
    cupy = require_cupy()
    n, K = _check(logits, 1)
    logits = cupy.ascontiguousarray(logits)
    targets = cupy.ascontiguousarray(targets, dtype=logits.dtype)
    grad, proba = cupy.empty_like(logits), cupy.empty_like(logits)
    row_loss = cupy.zeros(n, dtype=logits.dtype)
    if n:
        compiled_kernel(_SOURCE, _softmax_xent_name(logits.dtype, K))(
            *_grid(n), (logits, targets, cupy.int64(n), grad, proba, row_loss)
        )
    return row_loss.sum(dtype=cupy.float64), grad, proba


def softmax_kernel(logits):
    """Softmax of each row of 2-D CuPy ``logits`` (of at most
    ``MAX_EXPERTS`` columns), in one pass."""
    cupy = require_cupy()
    n, K = _check(logits, 1)
    logits = cupy.ascontiguousarray(logits)
    proba = cupy.empty_like(logits)
    if n:
        compiled_kernel(_SOURCE, _softmax_name(logits.dtype, K))(
            *_grid(n), (logits, cupy.int64(n), proba)
        )
    return proba


def mixture_mean(logits_means, bias, k):
    """Each row's mean over its top-``k`` experts, weighted by the gate.

    Parameters
    ----------
    logits_means : cupy.ndarray of shape (n, 2 K)
        The gate's logits, then the experts' means, each less its ``bias``.
    bias : cupy.ndarray of shape (2 K,)
    k : int
        Experts per row; ``K`` for a dense gate.

    Returns
    -------
    cupy.ndarray of shape (n,)
    """
    cupy = require_cupy()
    n, K = _check(logits_means[:, : logits_means.shape[1] // 2], k)
    logits_means = cupy.ascontiguousarray(logits_means)
    bias = cupy.ascontiguousarray(bias, dtype=logits_means.dtype)
    out = cupy.empty(n, dtype=logits_means.dtype)
    if n:
        compiled_kernel(_SOURCE, _mixture_mean_name(out.dtype, K, k))(
            *_grid(n), (logits_means, bias, cupy.int64(n), out)
        )
    return out


@cache
def _elementwise(in_params, out_params, operation, name):
    # CuPy compiles it per device and dtype on first call
    return require_cupy().ElementwiseKernel(in_params, out_params, operation, name)


def gaussian_log_lik(means, y, variance):
    """``-0.5 * (log(2 pi v_k) + (y_i - m_ik)^2 / v_k)`` for every row and
    expert in one pass, where the NumPy expression takes six; in float32 the
    squared term is capped at float32's largest value, as on the CPU.

    Parameters
    ----------
    means : cupy.ndarray of shape (n, K)
    y : cupy.ndarray of shape (n,)
    variance : cupy.ndarray of shape (K,)

    Returns
    -------
    cupy.ndarray of shape (n, K), in ``means``' type
    """
    cupy = require_cupy()
    variance = variance.astype(means.dtype, copy=False)
    cap = cupy.finfo(cupy.float32).max if means.dtype == cupy.float32 else cupy.inf
    kernel = _elementwise(
        "T m, T y, T v, T log_norm, T cap",
        "T out",
        # (a NaN square stays NaN: the comparison is false)
        "T s = (y - m) * (y - m) / v; out = (T)-0.5 * (log_norm + (s > cap ? cap : s));",
        "skmoe_gaussian_log_lik",
    )
    log_norm = cupy.log(2 * math.pi * variance)
    return kernel(means, y[:, None], variance, log_norm, means.dtype.type(cap))


def weighted_squared_residuals(weights, means, y):
    """``weights * (y[:, None] - means) ** 2`` in one pass (the NumPy
    expression takes three)."""
    kernel = _elementwise(
        "T w, T m, T y", "T out", "out = w * ((y - m) * (y - m));", "skmoe_weighted_squares"
    )
    return kernel(weights, means, y[:, None])


def dense_from_top_k(resp, index, n_experts):
    """The (n, K) array with ``resp[i, p]`` at ``(i, index[i, p])`` and zeros
    elsewhere, written in one pass (zeros then a scatter take three)."""
    cupy = require_cupy()
    n, k = resp.shape
    kernel = _elementwise(
        "raw T resp, raw int32 index, int32 k, int32 K",
        "T out",
        "const long long row = i / K; const int j = i % K; T v = 0;"
        "for (int p = 0; p < k; ++p) if (index[row * k + p] == j) v = resp[row * k + p];"
        "out = v;",
        "skmoe_dense_from_top_k",
    )
    out = cupy.empty((n, n_experts), dtype=resp.dtype)
    return kernel(resp, index, k, n_experts, out)
