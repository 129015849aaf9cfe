"""GPU kernels against the same mathematics written plainly in CuPy and PyTorch.

At n=10,000,000, d=64, K=16, top_k=2, float32 on one GPU: gate + top-k (logits
from one GEMM, then softmax, top-k and renormalisation) and the E-step
(responsibilities of the selected experts, the row log-likelihood and the
dense posterior the gate's M-step fits) and the M-step of 16 linear experts
from top-2 responsibilities, each timed with CUDA events (median
of repeats after warm-up). The floors come from the device's measured copy
bandwidth and GEMM rate. PyTorch is used only if installed.

    PYTHONPATH=. python3 benchmarks/gpu_em.py [--n 10000000] [--out benchmarks/results]

Writes gpu_em.json and gpu_em.md under --out. ``--stages`` times the
estimator's steps one operation at a time instead (gpu_stages); ``--large-fit``
fits ``--fit-rows`` rows (50,000,000) with the default settings and scores
them against the noise ceiling (gpu_large_fit).
"""

import argparse
import copy
import time
import warnings
from pathlib import Path

import cupy as cp
import numpy as np
from _report import write_report  # beside this script
from sklearn.exceptions import ConvergenceWarning

from skmoe import MixtureOfExpertsRegressor
from skmoe._backend import all_finite
from skmoe._backend._gaussian import gaussian_log_lik
from skmoe._backend._kernels import e_step as fused_e_step
from skmoe._backend._kernels import gate_top_k, mixture_mean, softmax_cross_entropy_kernel
from skmoe._backend._products import column_sum, transposed_product
from skmoe._backend._tiled import mixture_predict, softmax_loss_terms
from skmoe._design import Design
from skmoe._em import posteriors
from skmoe._plan import make_plan
from skmoe._solvers.em import EM
from skmoe.experts import LinearExperts
from skmoe.gates import SoftmaxGate

LOG_2PI = 1.8378770664093453


def timed(fn, repeat=20, warmup=3):
    """Median milliseconds of ``fn()`` by CUDA events."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start, stop = cp.cuda.Event(), cp.cuda.Event()
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(cp.cuda.get_elapsed_time(start, stop))
    return float(sorted(times)[len(times) // 2])


def floors():
    """Copy bandwidth (bytes read + written per second) and float32 GEMM rate."""
    a = cp.empty(2**29, dtype=cp.float32)  # 2 GiB
    b = cp.empty_like(a)
    copy_ms = timed(lambda: b.__setitem__(Ellipsis, a), repeat=10)
    m = cp.random.standard_normal((8192, 8192), dtype=cp.float32)
    gemm_ms = timed(lambda: m @ m, repeat=10)
    return {
        "bandwidth_GBs": 2 * a.nbytes / copy_ms / 1e6,
        "gemm_TFLOPs": 2 * 8192**3 / gemm_ms / 1e9,
    }


# ---------------------------------------------------------------- plain CuPy
def cupy_gate(X, W, k):
    logits = X @ W
    index = cp.argpartition(-logits, k - 1, axis=1)[:, :k]
    top = cp.take_along_axis(logits, index, axis=1)
    proba = cp.exp(top - top.max(axis=1, keepdims=True))
    return proba / proba.sum(axis=1, keepdims=True), index


def cupy_e_step(logits, means, y, variance, k):
    index = cp.argpartition(-logits, k - 1, axis=1)[:, :k]
    top = cp.take_along_axis(logits, index, axis=1)
    log_gate = top - (
        top.max(axis=1, keepdims=True)
        + cp.log(cp.exp(top - top.max(axis=1, keepdims=True)).sum(axis=1, keepdims=True))
    )
    r = y[:, None] - cp.take_along_axis(means, index, axis=1)
    joint = log_gate - 0.5 * (LOG_2PI + cp.log(variance[index]) + r * r / variance[index])
    top_joint = joint.max(axis=1, keepdims=True)
    row = top_joint + cp.log(cp.exp(joint - top_joint).sum(axis=1, keepdims=True))
    dense = logits - 0.5 * (cp.log(variance) + (y[:, None] - means) ** 2 / variance)
    dense = cp.exp(dense - dense.max(axis=1, keepdims=True))
    return cp.exp(joint - row), index, row[:, 0], dense / dense.sum(axis=1, keepdims=True)


# ---------------------------------------------------------------- plain PyTorch
def torch_versions():
    try:
        import torch
    except ImportError:
        return None

    def gate(X, W, k):
        top, index = torch.topk(X @ W, k, dim=1)
        return torch.softmax(top, dim=1), index

    def m_step(X, y, dense_weights):
        # each expert's weighted Gram matrix over all rows, then one batched solve
        X1 = torch.cat([X, torch.ones_like(X[:, :1])], dim=1)
        grams = torch.stack([X1.T @ (X1 * w[:, None]) for w in dense_weights.T])
        rhs = torch.stack([X1.T @ (w * y) for w in dense_weights.T])
        eye = torch.eye(X1.shape[1], device=X.device, dtype=X.dtype)
        return torch.linalg.solve(grams + eye, rhs)

    def e_step(logits, means, y, variance, k):
        top, index = torch.topk(logits, k, dim=1)
        log_gate = torch.log_softmax(top, dim=1)
        var = variance[index]
        r = y[:, None] - torch.gather(means, 1, index)
        joint = log_gate - 0.5 * (LOG_2PI + torch.log(var) + r * r / var)
        row = torch.logsumexp(joint, dim=1)
        dense = torch.softmax(
            logits - 0.5 * (torch.log(variance) + (y[:, None] - means) ** 2 / variance), dim=1
        )
        return torch.exp(joint - row[:, None]), index, row, dense

    def em_iteration(X1, Z1, y, gate_coef, resp, gate_resp, k, n_gate_evaluations):
        """One EM iteration as plain PyTorch: the gate refitted by L-BFGS with
        as many loss evaluations as skmoe's took, the experts by dense
        weighted Gram matrices, then the top-k E-step."""
        gate_coef = gate_coef.clone().requires_grad_(True)
        optimizer = torch.optim.LBFGS(
            [gate_coef], max_iter=n_gate_evaluations, max_eval=n_gate_evaluations
        )

        def closure():
            optimizer.zero_grad()
            loss = -(gate_resp * torch.log_softmax(Z1 @ gate_coef, dim=1)).sum()
            loss = loss + 0.5 * (gate_coef[:-1] ** 2).sum()
            loss.backward()
            return loss

        optimizer.step(closure)
        coef = m_step(X1[:, :-1], y, resp)  # (K, d + 1)
        means = X1 @ coef.T
        residual = (y[:, None] - means) ** 2
        variance = (resp * residual).sum(dim=0) / resp.sum(dim=0)
        log_lik = -0.5 * (torch.log(2 * torch.pi * variance) + residual / variance)
        with torch.no_grad():
            logits = Z1 @ gate_coef
        top, index = torch.topk(logits, k, dim=1)
        joint = torch.log_softmax(top, dim=1) + torch.gather(log_lik, 1, index)
        row = torch.logsumexp(joint, dim=1, keepdim=True)
        new_resp = torch.zeros_like(resp).scatter_(1, index, torch.exp(joint - row))
        return new_resp, torch.softmax(logits + log_lik, dim=1)

    def predict(X1, Z1, gate_coef, coef, k):
        top, index = torch.topk(Z1 @ gate_coef, k, dim=1)
        means = torch.gather(X1 @ coef.T, 1, index)
        return (torch.softmax(top, dim=1) * means).sum(dim=1)

    return torch, gate, e_step, m_step, em_iteration, predict


def regime_data(n, d, n_experts, dtype, seed=0):
    """Rows in ``n_experts`` regions of space (nearest of random centres),
    each with its own linear law, made on the device in chunks."""
    rng = cp.random.default_rng(seed)
    centres = rng.standard_normal((n_experts, d), dtype=dtype)
    laws = rng.standard_normal((n_experts, d), dtype=dtype)
    X = rng.standard_normal((n, d), dtype=dtype)
    y = cp.empty(n, dtype=dtype)
    for start in range(0, n, 5_000_000):
        part = X[start : start + 5_000_000]
        regime = ((centres**2).sum(axis=1) - 2 * part @ centres.T).argmin(axis=1)
        y[start : start + len(part)] = (part * laws[regime]).sum(axis=1)
    y += 0.1 * rng.standard_normal(n, dtype=dtype)
    return X, y


# regime_data's noise is sd 0.1; fits are scored on this many further rows
NOISE_VARIANCE = 0.01
TEST_ROWS = 1_000_000


def held_out_regime_data(n, d, n_experts, seed):
    """``regime_data`` of ``n`` rows to fit and ``TEST_ROWS`` more to score
    on, ``(X, y, X_test, y_test)``, and the noise ceiling of R^2 on the
    latter, ``1 - NOISE_VARIANCE / var(y_test)``."""
    X, y = regime_data(n + TEST_ROWS, d, n_experts, cp.float32, seed=seed)
    X_test, y_test = X[n:], y[n:]
    return X[:n], y[:n], X_test, y_test, 1 - NOISE_VARIANCE / float(y_test.var())


class GateEvaluations:
    """Counts the gate's loss evaluations over all rows (one per Newton step
    and one per line-search try)."""

    def __init__(self):
        self.count = 0
        self._fused_loss_terms = SoftmaxGate._fused_loss_terms

    def __enter__(self):
        fused_loss_terms = self._fused_loss_terms

        def counting_loss_terms(gate, *args):
            terms = fused_loss_terms(gate, *args)

            def counted(*params):
                self.count += 1
                return terms(*params)

            return counted

        SoftmaxGate._fused_loss_terms = counting_loss_terms
        return self

    def __exit__(self, *exc):
        SoftmaxGate._fused_loss_terms = self._fused_loss_terms


def estimator_rows(n, d, K, k, versions, repeat=5, rounds=3):
    """One EM iteration and predict of the estimator itself, against the same
    mathematics in plain PyTorch. The two EM iterations are timed in
    alternation, ``rounds`` times: each row holds the median of the rounds,
    and PyTorch's the rounds' ratios (the machine is shared, and its load
    moves between rounds)."""
    X, y = regime_data(n, d, K, cp.float32)
    model = MixtureOfExpertsRegressor(
        n_experts=K, top_k=k, max_iter=2, random_state=0, device="cuda"
    ).fit(X, y)  # a state partway through a fit
    gate, experts = model.gate_, model._experts
    Z = gate.standardize(X)
    design = Design(Z, gate.scaler_, n_experts=K)
    weights = cp.ones(n, dtype=X.dtype)
    log_lik = model._likelihood.log_lik(experts.predict(X), y, model.noise_variance_)
    em = EM(make_plan(model, n, n), model._likelihood, model._printer(), unit_weights=True)
    resp, gate_resp, _ = posteriors(gate, Z, log_lik)
    state = {"resp": resp, "gate_resp": gate_resp}
    rng = np.random.RandomState(0)

    def iteration():
        out = em._step(gate, experts, X, design, y, weights, state["resp"], state["gate_resp"], rng)
        state["resp"], state["gate_resp"] = out[3], out[4]

    iteration()
    with GateEvaluations() as counter:
        em_ms = [timed(iteration, repeat=repeat, warmup=0)]
    evaluations = max(1, round(counter.count / repeat))
    predict_ms = timed(lambda: model.predict(X))
    label = f"skmoe ({evaluations} gate evaluations per iteration)"
    rows = [("predict", "skmoe (one tiled kernel)", predict_ms)]
    if versions is not None:
        torch, em_iteration, torch_predict = versions[0], versions[4], versions[5]
        tX, tZ, ty = (torch.as_tensor(a, device="cuda") for a in (X, Z, y))
        ones = torch.ones_like(tX[:, :1])
        X1, Z1 = torch.cat([tX, ones], dim=1), torch.cat([tZ, ones], dim=1)
        gate_coef = torch.as_tensor(cp.vstack([gate.coef_, gate.intercept_]), device="cuda")
        coef = torch.as_tensor(
            cp.hstack([experts.coef_, experts.intercept_[:, None]]), device="cuda"
        )
        tstate = {"resp": torch.as_tensor(resp), "gate_resp": torch.as_tensor(gate_resp)}

        def torch_iteration():
            tstate["resp"], tstate["gate_resp"] = em_iteration(
                X1, Z1, ty, gate_coef, tstate["resp"], tstate["gate_resp"], k, evaluations
            )

        torch_ms = [timed(torch_iteration, repeat=repeat)]
        for _ in range(rounds - 1):
            em_ms.append(timed(iteration, repeat=repeat, warmup=0))
            torch_ms.append(timed(torch_iteration, repeat=repeat))
        ratios = ", ".join(f"{t / s:.2f}" for s, t in zip(em_ms, torch_ms, strict=True))
        label += f"; median of {rounds} rounds"
        rows.insert(
            0,
            (
                "EM iteration",
                f"plain PyTorch (median of {rounds} rounds; its time over skmoe's: {ratios})",
                float(np.median(torch_ms)),
            ),
        )
        rows.append(
            ("predict", "plain PyTorch", timed(lambda: torch_predict(X1, Z1, gate_coef, coef, k)))
        )
    rows.insert(0, ("EM iteration", label, float(np.median(em_ms))))
    return rows


def stage_rows(n, d, K, k):
    """Where the estimator's steps spend their time, one operation at a time,
    at a state partway through a fit."""
    X, y = regime_data(n, d, K, cp.float32)
    model = MixtureOfExpertsRegressor(
        n_experts=K, top_k=k, max_iter=1, random_state=0, device="cuda"
    ).fit(X, y)
    gate, experts = model.gate_, model._experts
    Z = gate.standardize(X)
    log_lik = model._likelihood.log_lik(experts.predict(X), y, model.noise_variance_)
    resp, targets, _ = posteriors(gate, Z, log_lik)
    logits = Z @ gate.coef_ + gate.intercept_
    grad = softmax_cross_entropy_kernel(logits, targets)[1]
    weights = cp.hstack([gate.coef_, experts.coef_.T])
    logits_means = X @ weights
    bias = cp.concatenate([gate.intercept_, experts.intercept_])
    fused_terms = softmax_loss_terms(Z, targets)
    # each fit from the same state (a refit from its own optimum stops at once)
    with GateEvaluations() as counter:
        gate_ms = timed(lambda: copy.deepcopy(gate).fit_standardized(Z, targets), repeat=3)
    print(f"gate M-step: {counter.count / 6:.1f} loss evaluations per fit", flush=True)
    return [
        ("gate evaluation", "logits: Z @ W + b", timed(lambda: Z @ gate.coef_ + gate.intercept_)),
        (
            "gate evaluation",
            "cross-entropy kernel",
            timed(lambda: softmax_cross_entropy_kernel(logits, targets)),
        ),
        ("gate evaluation", "Z.T @ grad in row slices", timed(lambda: transposed_product(Z, grad))),
        ("gate evaluation", "Z.T @ grad, one cuBLAS call", timed(lambda: Z.T @ grad)),
        ("gate evaluation", "column sum of grad", timed(lambda: column_sum(grad))),
        (
            "gate evaluation",
            "all of it in one kernel (loss and gradient)",
            timed(lambda: fused_terms(gate.coef_, gate.intercept_)),
        ),
        ("fit", "gate M-step", gate_ms),
        ("fit", "experts' M-step", timed(lambda: experts.fit(X, y, resp), repeat=5)),
        ("fit", "E-step (posteriors)", timed(lambda: posteriors(gate, Z, log_lik))),
        ("predict", "finiteness check of X", timed(lambda: all_finite(X))),
        ("predict", "X @ [gate | experts]", timed(lambda: X @ weights)),
        ("predict", "mixture-mean kernel", timed(lambda: mixture_mean(logits_means, bias, k))),
        (
            "predict",
            "one tiled kernel instead of both",
            timed(lambda: mixture_predict(X, weights, bias, k)),
        ),
        ("predict", "whole predict", timed(lambda: model.predict(X))),
    ]


def large_fit(n, d, K, k):
    """Fit the estimator, with its default settings, on ``n`` rows: seconds,
    iterations, held-out R^2 against the noise ceiling and memory, or the
    error if the device ran out of memory."""
    pool = cp.get_default_memory_pool()
    try:
        X, y, X_test, y_test, ceiling = held_out_regime_data(n, d, K, seed=1)
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            model = MixtureOfExpertsRegressor(
                n_experts=K, top_k=k, random_state=0, device="cuda"
            ).fit(X, y)
        cp.cuda.Device().synchronize()
    except cp.cuda.memory.OutOfMemoryError as error:
        return {"rows": n, "error": str(error)}
    finally:
        print(f"fit of {n} rows: {pool.total_bytes() / 1e9:.1f} GB held", flush=True)
    return {
        "rows": n,
        "seconds": time.perf_counter() - start,
        "n_iter": model.n_iter_,
        "n_merges": model.n_merges_,
        "converged": not any(issubclass(w.category, ConvergenceWarning) for w in caught),
        "r2_held_out": r2(model.predict(X_test), y_test),
        "ceiling": ceiling,
        "device_memory_held_GB": pool.total_bytes() / 1e9,
        "X_GB": X.nbytes / 1e9,
    }


def r2(prediction, y):
    return float(1 - ((y - prediction) ** 2).sum() / ((y - y.mean()) ** 2).sum())


def describe_fit(fit, d):
    if "error" in fit:
        return f"Fit of {fit['rows']:,} x {d} float32 rows: {fit['error']}"
    warned = "" if fit["converged"] else ", with a ConvergenceWarning"
    return (
        f"Fit of {fit['rows']:,} x {d} float32 rows (X {fit['X_GB']:.1f} GB; default "
        f"settings): {fit['seconds']:.1f} s{warned}, {fit['n_iter']} iterations in the kept "
        f"run, {fit['n_merges']} merge-and-split moves, R^2 {fit['r2_held_out']:.4f} on "
        f"{TEST_ROWS:,} further rows against a noise ceiling of {fit['ceiling']:.4f}, "
        f"{fit['device_memory_held_GB']:.1f} GB held by CuPy's memory pool after the fit."
    )


def kernel_rows(n, d, K, k, floor, versions):
    """The kernels against plain CuPy and PyTorch on random inputs, and the
    M-step's float32 error against float64."""
    f32 = cp.float32
    X = cp.random.standard_normal((n, d), dtype=f32)
    W = cp.random.standard_normal((d, K), dtype=f32) / d**0.5
    logits = X @ W
    means = cp.random.standard_normal((n, K), dtype=f32)
    y = cp.random.standard_normal(n, dtype=f32)
    variance = cp.random.uniform(0.1, 2.0, K).astype(f32)
    bw = floor["bandwidth_GBs"] * 1e6  # bytes per ms
    item = 4
    gate_bytes = X.nbytes + n * k * (item + 4)  # read X, write the sparse gate
    e_bytes = 2 * logits.nbytes + y.nbytes + n * k * (item + 4) + n * item + n * K * item

    def skmoe_e_step(with_dense):
        # the regressor's E-step: the Gaussian log-likelihoods, then the fused kernel
        return fused_e_step(logits, gaussian_log_lik(means, y, variance), k, dense=with_dense)

    resp, index, _, _ = skmoe_e_step(with_dense=False)
    dense = cp.zeros((n, K), dtype=f32)  # the top-k weights as the experts receive them
    dense[cp.arange(n)[:, None], index] = resp

    def m_step(dtype):
        experts = LinearExperts(K, alpha=1.0)
        return experts.fit(*(a.astype(dtype, copy=False) for a in (X, y, dense))).coef_

    coef32, coef64 = m_step(cp.float32), m_step(cp.float64)
    m_error = float(cp.linalg.norm(coef32 - coef64) / cp.linalg.norm(coef64))
    # the problem's floor: read X once, or the Gram products' arithmetic
    m_floor = max(
        X.nbytes / (floor["bandwidth_GBs"] * 1e6),
        2 * n * k * (d + 1) ** 2 / (floor["gemm_TFLOPs"] * 1e9),
    )
    rows = [
        ("gate + top-k", "floor (read X, write k per row)", gate_bytes / bw),
        ("gate + top-k", "skmoe (GEMM + fused kernel)", timed(lambda: gate_top_k(X @ W, k))),
        ("gate + top-k", "plain CuPy", timed(lambda: cupy_gate(X, W, k))),
        ("E-step", "floor (read logits, means, y; write outputs)", e_bytes / bw),
        (
            "E-step",
            "skmoe (likelihood kernel + fused E-step)",
            timed(lambda: skmoe_e_step(with_dense=True)),
        ),
        ("E-step", "plain CuPy", timed(lambda: cupy_e_step(logits, means, y, variance, k))),
        ("M-step", "floor (read X; or 2 n k (d+1)^2 flops)", m_floor),
        (
            "M-step",
            "skmoe (pairs by expert, gathered Gram kernel)",
            timed(lambda: m_step(cp.float32)),
        ),
    ]
    if versions is not None:
        torch, gate, e_step, torch_m_step = versions[:4]
        tX, tW, tl, tm, ty, tv = (
            torch.as_tensor(a, device="cuda") for a in (X, W, logits, means, y, variance)
        )
        rows.insert(3, ("gate + top-k", "plain PyTorch", timed(lambda: gate(tX, tW, k))))
        rows.insert(-2, ("E-step", "plain PyTorch", timed(lambda: e_step(tl, tm, ty, tv, k))))
        td = torch.as_tensor(dense, device="cuda")
        m_ms = timed(lambda: torch_m_step(tX, ty, td), repeat=5)
        rows.append(("M-step", "plain PyTorch (dense weights)", m_ms))

    return rows, m_error


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000_000)
    parser.add_argument("--d", type=int, default=64)
    parser.add_argument("--experts", type=int, default=16)
    parser.add_argument("--top-k", type=int, default=2)
    parser.add_argument("--fit-rows", type=int, default=50_000_000)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--stages", action="store_true", help="only the step-by-step times")
    parser.add_argument("--large-fit", action="store_true", help="only the fit of --fit-rows")
    args = parser.parse_args()
    n, d, K, k = args.n, args.d, args.experts, args.top_k
    if args.large_fit:
        write_large_fits(args.out, args.fit_rows, d, K, k)
        return
    if args.stages:
        stages = stage_rows(n, d, K, k)
        lines = [
            "# Where the GPU estimator spends its time",
            "",
            f"n={n}, d={d}, K={K}, top_k={k}, float32; CUDA events, median after warm-up. "
            "Generated by `PYTHONPATH=. python3 benchmarks/gpu_em.py --stages`.",
            "",
            "| step | operation | ms |",
            "|---|---|---|",
            *(f"| {step} | {op} | {ms:.2f} |" for step, op, ms in stages),
        ]
        rows = [{"step": s, "operation": o, "ms": ms} for s, o, ms in stages]
        write_report(args.out, "gpu_stages", {"n": n, "rows": rows}, "\n".join(lines) + "\n")
        return
    floor = floors()
    versions = torch_versions()
    rows, m_error = kernel_rows(n, d, K, k, floor, versions)
    cp.get_default_memory_pool().free_all_blocks()
    rows += estimator_rows(n, d, K, k, versions)
    device = cp.cuda.runtime.getDeviceProperties(0)["name"].decode()
    lines = [
        "# GPU kernels",
        "",
        f"{device}; n={n}, d={d}, K={K}, top_k={k}, float32; median of 20 after warm-up "
        f"(CUDA events). Measured copy bandwidth {floor['bandwidth_GBs']:.0f} GB/s, "
        f"float32 GEMM {floor['gemm_TFLOPs']:.1f} TFLOP/s. "
        "Generated by `PYTHONPATH=. python3 benchmarks/gpu_em.py`. "
        f"M-step float32 coefficients against float64: {m_error:.1e} relative.",
        "",
        "| step | version | ms |",
        "|---|---|---|",
    ]
    lines += [f"| {step} | {version} | {ms:.2f} |" for step, version, ms in rows]
    predict_ms = next(
        ms for step, version, ms in rows if version.startswith("skmoe") and step == "predict"
    )
    lines += ["", f"Predict: {n / predict_ms * 1e3:.2e} rows/s."]
    result = {
        "device": device,
        "n": n,
        "d": d,
        "experts": K,
        "top_k": k,
        **floor,
        "m_step_float32_error": m_error,
        "rows": [{"step": s, "version": v, "ms": ms} for s, v, ms in rows],
    }
    write_report(args.out, "gpu_em", result, "\n".join(lines) + "\n")


def write_large_fits(out, n, d, K, k):
    """The fit of ``n`` rows, or of half as many if the device runs out of
    memory, written to gpu_large_fit.json and .md as each ends."""
    device = cp.cuda.runtime.getDeviceProperties(0)["name"].decode()
    lines = [
        "# A large fit on the GPU",
        "",
        f"{device}; regime data, d={d}, K={K}, top_k={k}, float32. Generated by "
        f"`PYTHONPATH=. python3 benchmarks/gpu_em.py --large-fit --fit-rows {n}`.",
    ]
    result = {"device": device, "d": d, "experts": K, "top_k": k, "fits": []}
    for rows in (n, n // 2):
        cp.get_default_memory_pool().free_all_blocks()
        fit = large_fit(rows, d, K, k)
        result["fits"].append(fit)
        lines.append("\n" + describe_fit(fit, d))
        write_report(out, "gpu_large_fit", result, "\n".join(lines) + "\n")
        if "error" not in fit:
            break


if __name__ == "__main__":
    main()
