"""CUDA kernels against the NumPy code they replace (run where CUDA is present)."""

import numpy as np
import pytest

from skmoe._backend._top_k import keep_top_k
from skmoe._em import e_step
from skmoe._math import exp_floored, log_softmax_rows

pytestmark = pytest.mark.gpu

SHAPES = [(1000, 16, 2), (1025, 5, 5), (777, 1, 1), (300, 64, 3), (257, 7, 6), (0, 4, 2)]
RTOL = {np.float32: 1e-4, np.float64: 1e-10}


def _scatter(values, index, n_experts):
    dense = np.zeros((len(values), n_experts))
    np.put_along_axis(dense, index, values, axis=1)
    return dense


def _log_gate(logits, k):
    if k < logits.shape[1]:
        logits = keep_top_k(logits, k)
    return log_softmax_rows(logits)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n, n_experts, k", SHAPES)
def test_gate_top_k_matches_numpy(n, n_experts, k, dtype):
    cupy = pytest.importorskip("cupy")
    from skmoe._backend._kernels import gate_top_k

    logits = np.random.default_rng(0).normal(scale=3, size=(n, n_experts)).astype(dtype)
    proba, index = gate_top_k(cupy.asarray(logits), k)
    proba, index = proba.get(), index.get()
    assert proba.dtype == dtype and index.shape == (n, k)
    expected = exp_floored(_log_gate(logits.astype(np.float64), k))
    np.testing.assert_allclose(_scatter(proba, index, n_experts), expected, rtol=RTOL[dtype])
    assert np.all(np.count_nonzero(_scatter(proba, index, n_experts), axis=1) == k)
    assert np.all(np.diff(proba, axis=1) <= 0)


def test_kernels_refuse_too_many_experts():
    cupy = pytest.importorskip("cupy")
    from skmoe._backend._kernels import gate_top_k

    with pytest.raises(ValueError, match="at most 64 experts"):
        gate_top_k(cupy.zeros((3, 65), dtype=cupy.float32), 2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "n, n_features, n_experts, k",
    # several segments per expert; two and three tiles of features; k = K; K = 1
    [(20000, 7, 3, 2), (3001, 70, 4, 4), (2000, 130, 6, 1), (500, 3, 1, 1), (600, 64, 5, 2)],
)
def test_linear_experts_on_the_gpu_match_the_cpu(n, n_features, n_experts, k, dtype):
    cupy = pytest.importorskip("cupy")
    from skmoe.experts import LinearExperts

    rng = np.random.default_rng(0)
    X = (5 + rng.normal(size=(n, n_features))).astype(dtype)  # an offset: centring must hold
    y = (X @ rng.normal(size=n_features) + rng.normal(size=n)).astype(dtype)
    index = np.argsort(-rng.normal(size=(n, n_experts)), axis=1)[:, :k]
    if n_experts > k:  # one expert routed no rows
        index[index == n_experts - 1] = 0
    weights = np.zeros((n, n_experts))
    np.put_along_axis(weights, index, rng.uniform(0.1, 1.0, size=(n, k)), axis=1)
    gpu = LinearExperts(n_experts, alpha=0.5).fit(*map(cupy.asarray, (X, y, weights.astype(dtype))))
    cpu = LinearExperts(n_experts, alpha=0.5).fit(*(a.astype(np.float64) for a in (X, y, weights)))
    assert isinstance(gpu.coef_, cupy.ndarray) and gpu.coef_.dtype == dtype
    rtol = 1e-3 if dtype == np.float32 else 1e-9
    scale = np.abs(cpu.coef_).max()
    np.testing.assert_allclose(gpu.coef_.get(), cpu.coef_, rtol=rtol, atol=rtol * scale)
    np.testing.assert_allclose(
        gpu.intercept_.get(), cpu.intercept_, rtol=rtol, atol=rtol * scale * 10
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n, n_experts", [(10000, 16), (4097, 3), (31, 1), (0, 4), (5000, 70)])
def test_expert_pairs_match_numpy(n, n_experts, dtype):
    cupy = pytest.importorskip("cupy")
    from skmoe._backend._linear import expert_pairs

    rng = np.random.default_rng(0)
    weights = rng.uniform(0.1, 1.0, size=(n, n_experts)).astype(dtype)
    weights[rng.uniform(size=weights.shape) < 0.8] = 0  # some rows with none, some all
    # subnormal weights count as pairs, however a comparison would round them
    weights[rng.uniform(size=weights.shape) < 0.05] = np.finfo(dtype).smallest_subnormal
    pair_row, pair_w, starts = expert_pairs(cupy.asarray(weights))
    rows, experts = np.nonzero(weights.T)[::-1]  # by expert, rows ascending
    assert pair_row.dtype == np.int32 and pair_w.dtype == dtype
    np.testing.assert_array_equal(pair_row.get(), rows)
    np.testing.assert_array_equal(pair_w.get(), weights[rows, experts])
    np.testing.assert_array_equal(starts, np.searchsorted(experts, np.arange(n_experts + 1)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_linear_experts_on_the_gpu_take_misaligned_rows(dtype):
    """Rows whose starts are not 16-byte aligned take the scalar loads."""
    cupy = pytest.importorskip("cupy")
    from skmoe.experts import LinearExperts

    rng = np.random.default_rng(0)
    n, d, n_experts = 3000, 8, 3
    X = rng.normal(size=(n, d)).astype(dtype)
    y = rng.normal(size=n).astype(dtype)
    weights = rng.uniform(size=(n, n_experts)).astype(dtype)
    misaligned = cupy.empty(n * d + 1, dtype=dtype)[1:].reshape(n, d)
    misaligned[...] = cupy.asarray(X)
    assert misaligned.data.ptr % 16 != 0
    args = [cupy.asarray(y), cupy.asarray(weights)]
    fitted = LinearExperts(n_experts).fit(misaligned, *args)
    aligned = LinearExperts(n_experts).fit(cupy.asarray(X), *args)
    rtol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(fitted.coef_.get(), aligned.coef_.get(), rtol=rtol, atol=rtol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n, n_experts, k", SHAPES)
def test_e_step_from_log_likelihoods_matches_numpy(n, n_experts, k, dtype):
    cupy = pytest.importorskip("cupy")
    from skmoe._backend._kernels import e_step as e_step_kernel

    rng = np.random.default_rng(0)
    logits = rng.normal(scale=3, size=(n, n_experts)).astype(dtype)
    log_lik = rng.normal(scale=5, size=(n, n_experts)).astype(dtype) - 3
    resp, index, row_log_lik, dense = e_step_kernel(
        *map(cupy.asarray, (logits, log_lik)), k, dense=True
    )
    f64 = [a.astype(np.float64) for a in (logits, log_lik)]
    log_resp, expected_row = e_step(_log_gate(f64[0], k), f64[1])
    rtol = RTOL[dtype]
    np.testing.assert_allclose(
        _scatter(resp.get(), index.get(), n_experts), exp_floored(log_resp), rtol=rtol, atol=1e-6
    )
    np.testing.assert_allclose(row_log_lik.get(), expected_row, rtol=rtol, atol=rtol)
    dense_expected = exp_floored(e_step(log_softmax_rows(f64[0]), f64[1])[0])
    np.testing.assert_allclose(dense.get(), dense_expected, rtol=rtol, atol=1e-6)
    # without the selected experts' outputs: the same kernel, the same values
    *unwritten, alone_row, alone_dense = e_step_kernel(
        *map(cupy.asarray, (logits, log_lik)), k, dense=True, selected=False
    )
    assert unwritten == [None, None]
    np.testing.assert_array_equal(alone_row.get(), row_log_lik.get())
    np.testing.assert_array_equal(alone_dense.get(), dense.get())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n, n_experts", [(1000, 16), (1025, 5), (777, 1), (0, 4)])
def test_softmax_cross_entropy_kernel_matches_numpy(n, n_experts, dtype):
    cupy = pytest.importorskip("cupy")
    from skmoe._backend._kernels import softmax_cross_entropy_kernel

    rng = np.random.default_rng(0)
    logits = rng.normal(scale=3, size=(n, n_experts)).astype(dtype)
    targets = rng.uniform(size=(n, n_experts)).astype(dtype)
    loss, grad, proba = softmax_cross_entropy_kernel(*map(cupy.asarray, (logits, targets)))
    log_p = log_softmax_rows(logits.astype(np.float64))
    rtol = RTOL[dtype]
    np.testing.assert_allclose(float(loss), -np.vdot(targets, log_p), rtol=rtol, atol=rtol)
    np.testing.assert_allclose(proba.get(), np.exp(log_p), rtol=rtol, atol=1e-6)
    expected_grad = np.exp(log_p) * targets.sum(axis=1, keepdims=True) - targets
    np.testing.assert_allclose(grad.get(), expected_grad, rtol=rtol, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n, n_columns", [(1000, 10), (1025, 3), (777, 1), (0, 4)])
def test_softmax_kernel_matches_numpy(n, n_columns, dtype):
    cupy = pytest.importorskip("cupy")
    from skmoe._backend._kernels import softmax_kernel

    logits = np.random.default_rng(0).normal(scale=3, size=(n, n_columns)).astype(dtype)
    proba = softmax_kernel(cupy.asarray(logits)).get()
    assert proba.dtype == dtype
    expected = np.exp(log_softmax_rows(logits.astype(np.float64)))
    np.testing.assert_allclose(proba, expected, rtol=RTOL[dtype], atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("top_k", [None, 6])
def test_fused_posteriors_of_a_dense_gate_match_numpy(top_k, dtype):
    cupy = pytest.importorskip("cupy")
    from skmoe._backend._e_step import fused_posteriors

    rng = np.random.default_rng(0)
    logits = rng.normal(scale=3, size=(1025, 6)).astype(dtype)
    log_lik = rng.normal(scale=5, size=(1025, 6)).astype(dtype)
    log_lik[::7, 2] = -np.inf  # rows an expert cannot have given
    resp, gate_resp, row_log_lik = fused_posteriors(
        cupy.asarray(logits), cupy.asarray(log_lik), top_k, lambda Z: Z
    )
    log_resp, expected_row = e_step(log_softmax_rows(logits.astype(np.float64)), log_lik)
    np.testing.assert_allclose(resp.get(), exp_floored(log_resp), rtol=RTOL[dtype], atol=1e-6)
    assert gate_resp is resp
    np.testing.assert_allclose(row_log_lik.get(), expected_row, rtol=RTOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "n, n_features, n_experts",
    # 100,003 rows: several tiles per block of the grid-stride loop
    [
        (5000, 64, 16),
        (100_003, 64, 16),
        (4097, 7, 5),
        (777, 1, 1),
        (300, 33, 64),
        (2049, 130, 3),
        (0, 4, 2),
    ],
)
@pytest.mark.parametrize("tensor_cores", [True, False])
def test_fused_gate_loss_matches_numpy(n, n_features, n_experts, dtype, tensor_cores, monkeypatch):
    cupy = pytest.importorskip("cupy")
    from skmoe._backend import _tiled

    if not tensor_cores:  # the CUDA-core kernel where the tensor-core one would run
        monkeypatch.setattr(_tiled, "_tensor_core_plan", lambda *args: None)
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(n, n_features)).astype(dtype)
    targets = rng.uniform(size=(n, n_experts)).astype(dtype)
    coef = rng.normal(scale=0.3, size=(n_features, n_experts))
    intercept = rng.normal(size=n_experts)
    terms = _tiled.softmax_loss_terms(cupy.asarray(Z), cupy.asarray(targets))
    packed = terms(cupy.asarray(coef), cupy.asarray(intercept)).get()
    split = 1 + n_features * n_experts
    loss, grad_coef = packed[0], packed[1:split].reshape(n_features, n_experts)
    grad_intercept = packed[split:]
    Z64, targets64 = Z.astype(np.float64), targets.astype(np.float64)
    log_p = log_softmax_rows(Z64 @ coef.astype(dtype) + intercept.astype(dtype))
    grad = np.exp(log_p) * targets64.sum(axis=1, keepdims=True) - targets64
    scale = 10 * np.sqrt(max(n, 1)) * RTOL[dtype]  # sums over n rows
    np.testing.assert_allclose(
        float(loss), -np.vdot(targets64, log_p), rtol=RTOL[dtype], atol=scale
    )
    np.testing.assert_allclose(grad_coef, Z64.T @ grad, rtol=RTOL[dtype], atol=scale)
    np.testing.assert_allclose(grad_intercept, grad.sum(axis=0), atol=scale)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "n, n_features, n_out",
    # odd sizes: rows past the last tile, features and outputs not multiples of 4
    [(100_003, 64, 16), (4097, 7, 5), (777, 1, 1), (300, 33, 40), (0, 4, 2)],
)
def test_thin_product_matches_numpy(n, n_features, n_out, dtype):
    cupy = pytest.importorskip("cupy")
    from skmoe._backend._tiled import thin_product

    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, n_features)).astype(dtype)
    W = rng.normal(size=(n_features, n_out)).astype(dtype)
    bias = rng.normal(size=n_out).astype(dtype)
    out = thin_product(cupy.asarray(X), cupy.asarray(W), cupy.asarray(bias))
    assert out.dtype == dtype and out.shape == (n, n_out)
    expected = X.astype(np.float64) @ W + bias
    np.testing.assert_allclose(out.get(), expected, rtol=RTOL[dtype], atol=RTOL[dtype] * 10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "n, n_features, n_experts, n_classes",
    # the benchmark's sizes (10 classes at 16 features: in float64 the tile
    # of 32 does not fit); odd ones (rows past the last tile, features and
    # columns not multiples of 4); no rows
    [(100_003, 32, 8, 3), (100_003, 16, 8, 10), (4097, 7, 3, 3), (777, 1, 1, 5), (0, 4, 2, 3)],
)
def test_class_log_lik_matches_numpy(n, n_features, n_experts, n_classes, dtype):
    cupy = pytest.importorskip("cupy")
    from skmoe._backend._tiled import class_log_lik

    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, n_features)).astype(dtype)
    y = rng.integers(n_classes, size=n)
    coef = rng.normal(scale=0.3, size=(n_experts, n_classes, n_features)).astype(dtype)
    intercept = rng.normal(size=(n_experts, n_classes)).astype(dtype)
    intercept[0, 0] = 40.0  # the first expert's other classes below the floor
    floor = 1e-10
    out = class_log_lik(*(cupy.asarray(a) for a in (X, coef, intercept, y)), floor)
    assert out.dtype == dtype and out.shape == (n, n_experts)
    logits = np.einsum("nd,kcd->nkc", X.astype(np.float64), coef) + intercept
    log_p = log_softmax_rows(logits)[np.arange(n), :, y]
    expected = np.maximum(log_p, np.log(floor))
    np.testing.assert_allclose(out.get(), expected, rtol=RTOL[dtype], atol=RTOL[dtype] * 10)
    if n:  # a NaN coefficient gives its expert NaN, not the floor
        coef[-1, 0, 0] = np.nan
        out = class_log_lik(*(cupy.asarray(a) for a in (X, coef, intercept, y)), floor).get()
        assert np.isnan(out[:, -1]).all() and np.isfinite(out[:, :-1]).all()


def test_class_log_lik_declines_sizes_beyond_it():
    cupy = pytest.importorskip("cupy")
    from skmoe._backend._tiled import class_log_lik

    y = cupy.zeros(10, dtype=cupy.int32)
    # 320 columns; in float64, 80 columns of 32 features
    for dtype, (d, K, C) in [(cupy.float32, (64, 16, 20)), (cupy.float64, (32, 8, 10))]:
        X = cupy.ones((10, d), dtype=dtype)
        assert class_log_lik(X, cupy.ones((K, C, d)), cupy.ones((K, C)), y, 1e-10) is None


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n, n_experts, k", SHAPES)
def test_dense_from_top_k_matches_numpy(n, n_experts, k, dtype):
    cupy = pytest.importorskip("cupy")
    from skmoe._backend._kernels import dense_from_top_k

    rng = np.random.default_rng(0)
    index = np.argsort(rng.uniform(size=(n, n_experts)), axis=1)[:, :k].astype(np.int32)
    resp = rng.uniform(size=(n, k)).astype(dtype)
    out = dense_from_top_k(cupy.asarray(resp), cupy.asarray(index), n_experts).get()
    np.testing.assert_array_equal(out, _scatter(resp, index, n_experts))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "n, n_features, n_experts, n_classes",
    # the benchmark's sizes (10 classes: two launches); a softmax of padding
    # alone past the last expert; one of each; four launches at 64 features,
    # the last with padding alone; no rows
    [
        (100_003, 32, 8, 3),
        (5000, 32, 8, 10),
        (4097, 7, 3, 3),
        (777, 1, 1, 5),
        (2049, 64, 15, 10),
        (0, 4, 2, 3),
    ],
)
def test_fused_class_loss_matches_numpy(n, n_features, n_experts, n_classes, dtype):
    cupy = pytest.importorskip("cupy")
    from skmoe._backend._tiled import class_softmax_loss_terms

    rng = np.random.default_rng(0)
    Z = rng.normal(size=(n, n_features)).astype(dtype)
    y = rng.integers(n_classes, size=n)
    weights = rng.uniform(size=(n, n_experts)).astype(dtype)
    columns = n_experts * n_classes
    coef = rng.normal(scale=0.3, size=(n_features, columns))
    intercept = rng.normal(size=columns)
    args = (cupy.asarray(a) for a in (Z, y, weights))
    terms = class_softmax_loss_terms(*args, n_classes)
    packed = terms(cupy.asarray(coef), cupy.asarray(intercept)).get()
    split = 1 + n_features * columns
    assert packed.shape == (split + columns,)
    logits = Z.astype(np.float64) @ coef.astype(dtype) + intercept.astype(dtype)
    log_p = log_softmax_rows(logits.reshape(n, n_experts, n_classes))
    targets64 = weights.astype(np.float64)[:, :, None] * (y[:, None, None] == np.arange(n_classes))
    grad = np.exp(log_p) * targets64.sum(axis=2, keepdims=True) - targets64
    grad = grad.reshape(n, columns)
    scale = 10 * np.sqrt(max(n, 1)) * RTOL[dtype]  # sums over n rows
    np.testing.assert_allclose(packed[0], -np.vdot(targets64, log_p), rtol=RTOL[dtype], atol=scale)
    grad_coef = packed[1:split].reshape(n_features, columns)
    np.testing.assert_allclose(
        grad_coef, Z.astype(np.float64).T @ grad, rtol=RTOL[dtype], atol=scale
    )
    np.testing.assert_allclose(packed[split:], grad.sum(axis=0), atol=scale)
    # the loss alone, by the instance that forms no gradient
    loss = terms(cupy.asarray(coef), cupy.asarray(intercept), gradient=False).get()
    assert loss.shape == (1,)
    np.testing.assert_allclose(loss[0], packed[0], rtol=RTOL[dtype], atol=scale)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "n, n_features, n_experts, n_classes",
    # as the loss's; an expert of no weight on any row
    [(100_003, 32, 8, 3), (5000, 32, 8, 10), (4097, 7, 3, 3), (2049, 64, 15, 10), (0, 4, 2, 3)],
)
def test_fused_class_hessian_product_matches_numpy(n, n_features, n_experts, n_classes, dtype):
    cupy = pytest.importorskip("cupy")
    from skmoe._backend._tiled import class_softmax_hessian_product

    rng = np.random.default_rng(0)
    Z = rng.normal(size=(n, n_features)).astype(dtype)
    weights = rng.uniform(size=(n, n_experts)).astype(dtype)
    weights[:, 1] = 0
    proba = np.exp(log_softmax_rows(rng.normal(size=(n, n_experts, n_classes)))).astype(dtype)
    columns = n_experts * n_classes
    coef = rng.normal(scale=0.3, size=(n_features, columns))
    intercept = rng.normal(size=columns)
    args = (cupy.asarray(a) for a in (Z, weights, proba))
    product = class_softmax_hessian_product(*args)
    packed = product(cupy.asarray(coef), cupy.asarray(intercept)).get()
    split = 1 + n_features * columns
    assert packed.shape == (split + columns,) and packed[0] == 0
    change = Z.astype(np.float64) @ coef.astype(dtype) + intercept.astype(dtype)
    change = change.reshape(n, n_experts, n_classes)
    weighted = weights.astype(np.float64)[:, :, None] * proba
    mean = (proba * change).sum(axis=2, keepdims=True)
    curved = (weighted * (change - mean)).reshape(n, columns)
    scale = 10 * np.sqrt(max(n, 1)) * RTOL[dtype]  # sums over n rows
    grad_coef = packed[1:split].reshape(n_features, columns)
    np.testing.assert_allclose(
        grad_coef, Z.astype(np.float64).T @ curved, rtol=RTOL[dtype], atol=scale
    )
    np.testing.assert_allclose(packed[split:], curved.sum(axis=0), atol=scale)


def test_fused_class_loss_declines_what_it_cannot_take():
    cupy = pytest.importorskip("cupy")
    from skmoe._backend._tiled import class_softmax_hessian_product, class_softmax_loss_terms

    y, weights = cupy.zeros(10, dtype=int), cupy.ones((10, 2))
    assert class_softmax_loss_terms(cupy.zeros((10, 2000)), y, weights, 3) is None
    assert class_softmax_loss_terms(cupy.zeros((10, 8))[:, ::2], y, weights, 3) is None
    proba = cupy.full((10, 2, 3), 1 / 3)
    assert class_softmax_hessian_product(cupy.zeros((10, 2000)), weights, proba) is None


def test_fused_gate_loss_declines_sizes_beyond_it():
    cupy = pytest.importorskip("cupy")
    from skmoe._backend._tiled import softmax_loss_terms

    assert softmax_loss_terms(cupy.zeros((10, 4)), cupy.zeros((10, 65))) is None
    assert softmax_loss_terms(cupy.zeros((10, 2000)), cupy.zeros((10, 16))) is None
    assert softmax_loss_terms(cupy.zeros((10, 8))[:, ::2], cupy.zeros((10, 16))) is None


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n, n_experts, k", SHAPES)
def test_mixture_mean_matches_numpy(n, n_experts, k, dtype):
    cupy = pytest.importorskip("cupy")
    from skmoe._backend._kernels import mixture_mean

    rng = np.random.default_rng(0)
    logits_means = rng.normal(scale=3, size=(n, 2 * n_experts)).astype(dtype)
    bias = rng.normal(size=2 * n_experts).astype(dtype)
    out = mixture_mean(cupy.asarray(logits_means), cupy.asarray(bias), k).get()
    logits, means = np.split(logits_means.astype(np.float64) + bias, 2, axis=1)
    expected = (exp_floored(_log_gate(logits, k)) * means).sum(axis=1)
    np.testing.assert_allclose(out, expected, rtol=RTOL[dtype], atol=RTOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_features", [64, 5, 300])
@pytest.mark.parametrize("n, n_experts, k", SHAPES)
def test_tiled_mixture_predict_matches_numpy(n, n_experts, k, n_features, dtype):
    # 300 features is beyond the tiled kernel: one GEMM, then mixture_mean
    cupy = pytest.importorskip("cupy")
    from skmoe._backend._tiled import mixture_predict

    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, n_features)).astype(dtype)
    weights = rng.normal(scale=n_features**-0.5, size=(n_features, 2 * n_experts)).astype(dtype)
    bias = rng.normal(size=2 * n_experts).astype(dtype)
    out = mixture_predict(*map(cupy.asarray, (X, weights, bias)), k).get()
    logits, means = np.split(X.astype(np.float64) @ weights + bias, 2, axis=1)
    expected = (exp_floored(_log_gate(logits, k)) * means).sum(axis=1)
    assert out.dtype == dtype
    np.testing.assert_allclose(out, expected, rtol=RTOL[dtype], atol=10 * RTOL[dtype])


@pytest.mark.parametrize("n", [0, 1000, 1 << 14, 3 * (1 << 14) + 17])
def test_transposed_product_matches_numpy(n):
    cupy = pytest.importorskip("cupy")
    from skmoe._backend._products import transposed_product

    rng = np.random.default_rng(0)
    A, B = rng.normal(size=(n, 7)), rng.normal(size=(n, 3))
    out = transposed_product(cupy.asarray(A), cupy.asarray(B))
    np.testing.assert_allclose(out.get(), A.T @ B, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("bad", [None, np.nan, np.inf, -np.inf])
def test_all_finite_finds_any_non_finite_entry(bad):
    cupy = pytest.importorskip("cupy")
    from skmoe._backend import all_finite

    X = np.full((3000, 5), 3e38, dtype=np.float32)  # finite, but the sum overflows
    if bad is not None:
        X[np.random.default_rng(0).integers(3000), 3] = bad
    assert all_finite(cupy.asarray(X)) == (bad is None)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gaussian_log_lik_matches_numpy(dtype):
    cupy = pytest.importorskip("cupy")
    from skmoe._backend._kernels import gaussian_log_lik, weighted_squared_residuals

    rng = np.random.default_rng(0)
    n, n_experts = 1001, 7
    means = rng.normal(size=(n, n_experts)).astype(dtype)
    y = rng.normal(size=n).astype(dtype)
    y[0], y[1] = 1e30, np.nan  # a square past float32's range, and a NaN
    variance = rng.uniform(0.1, 2.0, size=n_experts).astype(dtype)
    weights = rng.uniform(size=(n, n_experts)).astype(dtype)
    squared = (y[:, None].astype(np.float64) - means) ** 2 / variance
    if dtype == np.float32:
        squared = np.minimum(squared, np.finfo(np.float32).max)
    expected = -0.5 * (np.log(2 * np.pi * variance.astype(np.float64)) + squared)
    got = gaussian_log_lik(*map(cupy.asarray, (means, y, variance))).get()
    assert got.dtype == dtype
    np.testing.assert_allclose(got[0], expected[0], rtol=RTOL[dtype])  # the cap
    assert np.isnan(got[1]).all()
    # terms of order 1 to 100 cancel near zero: an absolute tolerance too
    np.testing.assert_allclose(got[2:], expected[2:], rtol=RTOL[dtype], atol=100 * RTOL[dtype])
    expected = weights * (y[:, None].astype(np.float64) - means) ** 2
    got = weighted_squared_residuals(*map(cupy.asarray, (weights, means, y)))
    np.testing.assert_allclose(got[2:].get(), expected[2:], rtol=RTOL[dtype])
