"""CUDA kernels against the NumPy code they replace (run where CUDA is present)."""

import numpy as np
import pytest

from skmoe._em import e_step
from skmoe._math import exp_floored, log_softmax_rows
from skmoe.gates._softmax import _keep_top_k

pytestmark = pytest.mark.gpu

SHAPES = [(1000, 16, 2), (1025, 5, 5), (777, 1, 1), (300, 64, 3), (257, 7, 6), (0, 4, 2)]
RTOL = {np.float32: 1e-4, np.float64: 1e-10}


def _scatter(values, index, n_experts):
    dense = np.zeros((len(values), n_experts))
    np.put_along_axis(dense, index, values, axis=1)
    return dense


def _log_gate(logits, k):
    if k < logits.shape[1]:
        logits = _keep_top_k(logits, k)
    return log_softmax_rows(logits)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n, n_experts, k", SHAPES)
def test_gate_top_k_matches_numpy(n, n_experts, k, dtype):
    cupy = pytest.importorskip("cupy")
    from skmoe._backend._kernels import gate_top_k

    logits = np.random.default_rng().normal(scale=3, size=(n, n_experts)).astype(dtype)
    proba, index = gate_top_k(cupy.asarray(logits), k)
    proba, index = proba.get(), index.get()
    assert proba.dtype == dtype and index.shape == (n, k)
    expected = exp_floored(_log_gate(logits.astype(np.float64), k))
    np.testing.assert_allclose(_scatter(proba, index, n_experts), expected, rtol=RTOL[dtype])
    assert np.all(np.count_nonzero(_scatter(proba, index, n_experts), axis=1) == k)
    assert np.all(np.diff(proba, axis=1) <= 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n, n_experts, k", SHAPES)
def test_e_step_gaussian_matches_numpy(n, n_experts, k, dtype):
    cupy = pytest.importorskip("cupy")
    from skmoe._backend._kernels import e_step_gaussian

    rng = np.random.default_rng()
    logits = rng.normal(scale=3, size=(n, n_experts)).astype(dtype)
    means = rng.normal(size=(n, n_experts)).astype(dtype)
    y = rng.normal(size=n).astype(dtype)
    variance = rng.uniform(0.1, 2.0, size=n_experts).astype(dtype)
    resp, index, row_log_lik, dense = e_step_gaussian(
        *map(cupy.asarray, (logits, means, y, variance)), k, dense=True
    )
    f64 = [a.astype(np.float64) for a in (logits, means, y, variance)]
    log_lik = -0.5 * (np.log(2 * np.pi * f64[3]) + (f64[2][:, None] - f64[1]) ** 2 / f64[3])
    log_resp, expected_row = e_step(_log_gate(f64[0], k), log_lik)
    dense_log_resp, _ = e_step(log_softmax_rows(f64[0]), log_lik)
    rtol = RTOL[dtype]
    np.testing.assert_allclose(
        _scatter(resp.get(), index.get(), n_experts), exp_floored(log_resp), rtol=rtol, atol=1e-6
    )
    np.testing.assert_allclose(row_log_lik.get(), expected_row, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(dense.get(), exp_floored(dense_log_resp), rtol=rtol, atol=1e-6)
    assert e_step_gaussian(*map(cupy.asarray, (logits, means, y, variance)), k)[3] is None


def test_kernels_refuse_too_many_experts():
    cupy = pytest.importorskip("cupy")
    from skmoe._backend._kernels import gate_top_k

    with pytest.raises(ValueError, match="at most 64 experts"):
        gate_top_k(cupy.zeros((3, 65), dtype=cupy.float32), 2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n, n_experts, k", [(5000, 5, 2), (3001, 4, 4), (2000, 6, 1)])
def test_linear_m_step_matches_the_cpu_experts(n, n_experts, k, dtype):
    cupy = pytest.importorskip("cupy")
    from skmoe._backend._linear import linear_experts_top_k
    from skmoe.experts import LinearExperts

    rng = np.random.default_rng()
    X = (5 + rng.normal(size=(n, 7))).astype(dtype)  # an offset: centring must hold
    y = (X @ rng.normal(size=7) + rng.normal(size=n)).astype(dtype)
    logits = rng.normal(size=(n, n_experts))
    index = np.argsort(-logits, axis=1)[:, :k].astype(np.int32)
    resp = rng.uniform(0.1, 1.0, size=(n, k))
    if n_experts > k:  # one expert routed no rows
        index[index == n_experts - 1] = 0
    coef, intercept = linear_experts_top_k(
        *map(cupy.asarray, (X, y, resp.astype(dtype), index)), n_experts, alpha=0.5
    )
    weights = np.zeros((n, n_experts))
    np.add.at(weights, (np.arange(n)[:, None], index), resp)
    ref = LinearExperts(n_experts, alpha=0.5).fit(
        X.astype(np.float64), y.astype(np.float64), weights
    )
    rtol = 1e-3 if dtype == np.float32 else 1e-9
    scale = np.abs(ref.coef_).max()
    np.testing.assert_allclose(coef.get(), ref.coef_, rtol=rtol, atol=rtol * scale)
    np.testing.assert_allclose(intercept.get(), ref.intercept_, rtol=rtol, atol=rtol * scale * 10)
