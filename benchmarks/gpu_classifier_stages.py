"""Where the classifier's GPU fit spends its time.

- One evaluation of the logistic experts' loss and gradient on 10,000,000 x
  32 float32 rows, K=8: composed from library calls (the logits, the
  cross-entropy kernel on them, ``X1.T @ grad``) against the tiled kernel
  (``skmoe._backend._tiled.class_softmax_loss_terms``), at 10 classes also
  with all experts in one launch of 128 columns, and the loss alone (a
  line search's last trial); one Hessian product of
  the conjugate gradients on 2^20 sampled rows, composed and tiled; and the
  E-step's (n, K) class log-likelihoods, composed and by one kernel
  (``class_log_lik``); CUDA events, median of 5.
- One whole fit of ``MixtureOfExpertsClassifier(n_experts=8,
  device="cuda")`` on the rows of ``gpu_classifier.py``, its steps timed by
  wrappers that synchronise the device before and after each call (so the
  fit runs slower than alone; a caller's time includes its callees').

    PYTHONPATH=. python3 benchmarks/gpu_classifier_stages.py [--classes 3 10]

Writes gpu_classifier_stages.json and gpu_classifier_stages.md under --out.
"""

import argparse
import collections
import functools
import time
from pathlib import Path

import cupy as cp
from _regime_classes import FIT_ROWS as N
from _regime_classes import D, split
from _report import write_report  # beside this script
from gpu_classifier import N_EXPERTS as K
from gpu_classifier import timed_fit
from gpu_em import timed

import skmoe._base as base
import skmoe._optim as _optim
import skmoe._solvers.em as em
import skmoe._solvers.init as init
from skmoe import MixtureOfExpertsClassifier
from skmoe._backend import _tiled
from skmoe._backend._products import transposed_product
from skmoe._likelihood import CategoricalLikelihood
from skmoe.experts import _logistic
from skmoe.gates._softmax import SoftmaxGate

# (owner, attribute, label) of the steps a fit is timed by
STEPS = [
    (base, "check_data", "setup: input checks"),
    (MixtureOfExpertsClassifier, "_prepare_target", "setup: labels encoded"),
    (base, "distinct_fit_rows", "setup: distinct rows"),
    (init, "new_start", "setup: scaler, standardised rows, k-means start"),
    (em, "Design", "setup: design of the standardised rows"),
    (MixtureOfExpertsClassifier, "_publish", "after: fitted attributes"),
    (em.EM, "run", "EM run (each merge-and-split trial is one)"),
    (em.EM, "_step", "EM step"),
    (SoftmaxGate, "fit_standardized", "gate M-step"),
    (SoftmaxGate, "_fused_loss_terms", "gate: loss kernel's setup"),
    (_optim, "_block_factors", "gate: blocks' inverses"),
    (_optim, "_newton_cg_step", "gate: conjugate gradients"),
    (_optim, "backtrack", "gate: line search"),
    (_logistic.LogisticExperts, "fit", "experts' M-step"),
    (_logistic, "_frame", "experts: coordinates and bounds' Gram matrices"),
    (_logistic, "_fused_log_loss", "experts: loss kernels' setup (labels, launch plans)"),
    (_logistic, "conjugate_gradient", "experts: conjugate gradients"),
    (_logistic, "backtrack", "experts: line search"),
    (CategoricalLikelihood, "outputs", "class probabilities (n, K, C)"),
    (CategoricalLikelihood, "log_lik", "log-likelihood of the classes"),
    (em, "posteriors", "E-step"),
    (em.EM, "_extrapolated_step", "SQUAREM step"),
    (em, "redundant_pair", "moves: the redundant pair sought"),
    (em, "split_worst_expert", "moves: a split's start"),
    (init, "initial_resp", "k-means start"),
]


def loss_rows(n_classes):
    """``(operation, ms)`` of one loss evaluation and one Hessian product,
    composed and tiled."""
    Z = cp.random.standard_normal((N, D), dtype=cp.float32)
    X1 = cp.hstack([Z, cp.ones((N, 1), cp.float32)])
    theta = 0.1 * cp.random.standard_normal((D + 1, K * n_classes), dtype=cp.float32)
    y = cp.random.randint(0, n_classes, N).astype(cp.int32)
    w = cp.random.random((N, K), dtype=cp.float32)
    w /= w.sum(axis=1, keepdims=True)
    loss = _logistic._log_loss(y, w, n_classes)

    def composed():
        grad = loss((X1 @ theta).reshape(N, K, n_classes))[1]
        return transposed_product(X1, grad.reshape(N, K * n_classes))

    def tiled_terms():  # the labels and the launches, set up once per M-step
        return _tiled.class_softmax_loss_terms(Z, y, w, n_classes)

    terms = tiled_terms()
    rows = [
        ("composed: logits, cross-entropy kernel, X1.T @ grad", timed(composed, repeat=5)),
        ("tiled kernel", timed(lambda: terms(theta[:-1], theta[-1]), repeat=5)),
        (
            "tiled kernel, the loss alone",
            timed(lambda: terms(theta[:-1], theta[-1], False), repeat=5),
        ),
        ("tiled kernel's setup: labels, launch plans", timed(tiled_terms, repeat=3, warmup=1)),
    ]
    if n_classes > 8:  # 16 columns each: 8 experts are two launches, or one of 128 columns
        saved, _tiled._CLASS_COLUMNS = _tiled._CLASS_COLUMNS, 128
        try:
            one = tiled_terms()
        finally:
            _tiled._CLASS_COLUMNS = saved
        rows.append(
            ("tiled kernel, one launch", timed(lambda: one(theta[:-1], theta[-1]), repeat=5))
        )
    experts = _logistic.LogisticExperts(K, n_classes)
    experts.coef_ = theta[:-1].T.reshape(K, n_classes, D).copy()
    experts.intercept_ = theta[-1].reshape(K, n_classes).copy()
    likelihood = CategoricalLikelihood(n_classes, 1.0)
    rows.append(
        (
            "class log-likelihoods (n, K), composed: probabilities (n, K, C), then the classes'",
            timed(lambda: likelihood.log_lik(likelihood.outputs(experts, Z), y, None), repeat=5),
        )
    )
    floor = 1e-10
    rows.append(
        (
            "class log-likelihoods (n, K), one kernel",
            timed(
                lambda: _tiled.class_log_lik(Z, experts.coef_, experts.intercept_, y, floor),
                repeat=5,
            ),
        )
    )
    sample, sample1, sample_w = Z[: 1 << 20], X1[: 1 << 20], w[: 1 << 20]
    proba = _logistic._probabilities((sample1 @ theta).reshape(-1, K, n_classes))
    V = cp.asarray(theta, dtype=cp.float64)
    for label, features in (("composed", None), ("tiled", sample)):
        product = _logistic._hessian_product(sample1, features, proba, sample_w)
        ms = timed(lambda product=product: product(V), repeat=5)
        rows.append((f"Hessian product on 2^20 rows, {label}", ms))
    return rows


def fit_rows(n_classes, seed):
    """``(seconds, iterations, [(step, calls, seconds)])`` of one timed fit."""
    X, y, *_ = split(n_classes, seed)
    X, y = cp.asarray(X), cp.asarray(y)
    # compile the kernels first, on enough rows for the sampled paths
    timed_fit(X[:3_000_000], y[:3_000_000], seed + 1, "cuda")
    totals, calls = collections.Counter(), collections.Counter()
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in STEPS]
    for owner, name, label in STEPS:
        setattr(owner, name, _synchronised(getattr(owner, name), label, totals, calls))
    try:
        model, seconds = timed_fit(X, y, seed, "cuda")
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)
    steps = [(label, calls[label], totals[label]) for _, _, label in STEPS if calls[label]]
    return seconds, model.n_iter_, steps


def _synchronised(function, label, totals, calls):
    @functools.wraps(function)
    def timed_call(*args, **kwargs):
        cp.cuda.Device().synchronize()
        start = time.perf_counter()
        out = function(*args, **kwargs)
        cp.cuda.Device().synchronize()
        totals[label] += time.perf_counter() - start
        calls[label] += 1
        return out

    return timed_call


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--classes", type=int, nargs="+", default=[3, 10])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    device = cp.cuda.runtime.getDeviceProperties(0)["name"].decode()
    lines = [
        "# Where the classifier's GPU fit spends its time",
        "",
        f"{device}; {N:,} x {D} float32 rows, K={K}. Generated by "
        "`PYTHONPATH=. python3 benchmarks/gpu_classifier_stages.py`.",
        "",
    ]
    result = dict(device=device, classes=[])
    for n_classes in args.classes:
        loss = loss_rows(n_classes)
        cp.get_default_memory_pool().free_all_blocks()
        seconds, n_iter, steps = fit_rows(n_classes, args.seed)
        cp.get_default_memory_pool().free_all_blocks()
        lines += [
            f"## {n_classes} classes",
            "",
            "One evaluation of the experts' loss and gradient:",
            "",
            "| operation | ms |",
            "|---|---|",
            *(f"| {op} | {ms:.2f} |" for op, ms in loss),
            "",
            f"A whole fit, its steps synchronised: {seconds:.2f} s, {n_iter} iterations.",
            "",
            "| step | calls | seconds | ms per call |",
            "|---|---|---|---|",
            *(f"| {s} | {c} | {t:.3f} | {1000 * t / c:.1f} |" for s, c, t in steps),
            "",
        ]
        result["classes"].append(
            dict(
                n_classes=n_classes,
                loss=[dict(operation=op, ms=ms) for op, ms in loss],
                fit=dict(seconds=seconds, n_iter=n_iter),
                steps=[dict(step=s, calls=c, seconds=t) for s, c, t in steps],
            )
        )
        write_report(args.out, "gpu_classifier_stages", result, "\n".join(lines))


if __name__ == "__main__":
    main()
