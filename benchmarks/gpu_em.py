"""GPU kernels against the same mathematics written plainly in CuPy and PyTorch.

At n=10,000,000, d=64, K=16, top_k=2, float32 on one GPU: gate + top-k (logits
from one GEMM, then softmax, top-k and renormalisation) and the E-step
(responsibilities of the selected experts, the row log-likelihood and the
dense posterior the gate's M-step fits) and the M-step of 16 linear experts
from top-2 responsibilities, each timed with CUDA events (median
of repeats after warm-up). The floors come from the device's measured copy
bandwidth and GEMM rate. PyTorch is used only if installed.

    PYTHONPATH=. python3 benchmarks/gpu_em.py [--n 10000000] [--out benchmarks/results]

Writes gpu_em.json and gpu_em.md under --out.
"""

import argparse
from pathlib import Path

import cupy as cp
from _report import write_report  # beside this script

from skmoe._backend._kernels import e_step_gaussian, gate_top_k
from skmoe._backend._linear import linear_experts_top_k

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

    return torch, gate, e_step, m_step


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000_000)
    parser.add_argument("--d", type=int, default=64)
    parser.add_argument("--experts", type=int, default=16)
    parser.add_argument("--top-k", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    n, d, K, k = args.n, args.d, args.experts, args.top_k
    f32 = cp.float32

    X = cp.random.standard_normal((n, d), dtype=f32)
    W = cp.random.standard_normal((d, K), dtype=f32) / d**0.5
    logits = X @ W
    means = cp.random.standard_normal((n, K), dtype=f32)
    y = cp.random.standard_normal(n, dtype=f32)
    variance = cp.random.uniform(0.1, 2.0, K).astype(f32)
    floor = floors()
    bw = floor["bandwidth_GBs"] * 1e6  # bytes per ms
    item = 4
    gate_bytes = X.nbytes + n * k * (item + 4)  # read X, write the sparse gate
    e_bytes = 2 * logits.nbytes + y.nbytes + n * k * (item + 4) + n * item + n * K * item
    resp, index, _, _ = e_step_gaussian(logits, means, y, variance, k)

    def m_step(dtype):
        return linear_experts_top_k(
            X.astype(dtype), y.astype(dtype), resp.astype(dtype), index, K, alpha=1.0
        )

    coef32, coef64 = m_step(cp.float32)[0], m_step(cp.float64)[0]
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
            "skmoe (fused kernel)",
            timed(lambda: e_step_gaussian(logits, means, y, variance, k, dense=True)),
        ),
        ("E-step", "plain CuPy", timed(lambda: cupy_e_step(logits, means, y, variance, k))),
        ("M-step", "floor (read X; or 2 n k (d+1)^2 flops)", m_floor),
        (
            "M-step",
            "skmoe (pairs sorted by expert, batched chunk products)",
            timed(lambda: m_step(cp.float32)),
        ),
    ]
    versions = torch_versions()
    if versions is not None:
        torch, gate, e_step, torch_m_step = versions
        tX, tW, tl, tm, ty, tv = (
            torch.as_tensor(a, device="cuda") for a in (X, W, logits, means, y, variance)
        )
        rows.insert(3, ("gate + top-k", "plain PyTorch", timed(lambda: gate(tX, tW, k))))
        rows.insert(-2, ("E-step", "plain PyTorch", timed(lambda: e_step(tl, tm, ty, tv, k))))
        dense = cp.zeros((n, K), dtype=f32)
        dense[cp.arange(n)[:, None], index] = resp
        td = torch.as_tensor(dense, device="cuda")
        m_ms = timed(lambda: torch_m_step(tX, ty, td), repeat=5)
        rows.append(("M-step", "plain PyTorch (dense weights)", m_ms))

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


if __name__ == "__main__":
    main()
