"""
GPU speed-up (needs CUDA)
=========================

With ``device="cuda"``, :class:`~skmoe.MixtureOfExpertsRegressor` with its
built-in ridge experts runs EM on the GPU through CuPy. This example fits the
same sparse mixture (8 experts, ``top_k=2``) on the CPU and on the GPU, times
the fits and the predictions, and checks that the two agree.
It needs CuPy and a CUDA device; without them it prints what is missing and
stops.
"""

# %%
# Is there a GPU?
# ---------------
# ``cupy_available`` is True when CuPy imports and sees at least one CUDA
# device. Everything below runs only then.
import os
import time

import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import r2_score

from skmoe import MixtureOfExpertsRegressor
from skmoe._backend import cupy_available
from skmoe.datasets import make_regime_regression

gpu = cupy_available()
if not gpu:
    print(
        "This example needs CuPy and a CUDA device: "
        'pip install "skmoe[gpu]" on a machine with CUDA.'
    )

# %%
# Settings
# --------
# A million rows, but the CPU fits only the first ``n_compare`` of them: EM's
# cost per iteration grows with the number of rows, and run to convergence on
# all of them the CPU fit takes minutes, too long for a gallery example. The
# GPU fits both the same rows as the CPU, to compare the two, and all of them.
n_samples = 1_000_000
n_compare = 50_000
params = dict(n_experts=8, top_k=2, random_state=0)


def synchronize(device):
    """Wait for the GPU's queued work, so that a timer stops when it is done."""
    if device == "cuda":
        import cupy

        cupy.cuda.Device().synchronize()


def fit_and_predict(device, X_fit, y_fit, X_predict):
    """The fitted model, its predictions on X_predict, and the fit's and prediction's seconds.

    The inputs are NumPy arrays on both devices, and so are the predictions
    (NumPy in, NumPy out): the GPU's times include moving the data to the
    device and the predictions back.
    """
    model = MixtureOfExpertsRegressor(device=device, **params)
    start = time.perf_counter()
    model.fit(X_fit, y_fit)
    synchronize(device)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    prediction = model.predict(X_predict)
    synchronize(device)
    predict_s = time.perf_counter() - start
    return model, prediction, fit_s, predict_s


# %%
# The fits
# --------
# Before timing, a small GPU fit starts CUDA and compiles the kernels, which
# happens once per process. Every model predicts all ``n_samples`` rows.
if gpu:
    X, y = make_regime_regression(n_samples=n_samples, n_features=32, n_regimes=8, random_state=0)
    fit_and_predict("cuda", X[:10_000], y[:10_000], X[:10_000])  # warm-up, not timed
    runs = {
        ("cpu", n_compare): fit_and_predict("cpu", X[:n_compare], y[:n_compare], X),
        ("cuda", n_compare): fit_and_predict("cuda", X[:n_compare], y[:n_compare], X),
        ("cuda", n_samples): fit_and_predict("cuda", X, y, X),
    }

# %%
# Times and speed-up
# ------------------
# EM's work is about proportional to rows times iterations, so "rows x
# iterations per second" compares fits of different sizes, and fits that
# converged in different numbers of iterations.
if gpu:
    import cupy

    gpu_name = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
    print(f"d={X.shape[1]}, {X.dtype}; CPU: {os.cpu_count()} cores; GPU: {gpu_name}")
    print(
        f"{'device':>6s} {'fit rows':>9s} {'fit (s)':>8s} {'EM iter.':>8s} "
        f"{'rows x iter. / s':>16s} {f'predict {n_samples:,} rows (s)':>28s}"
    )
    throughput = {}
    for (device, n_fit), (model, _, fit_s, predict_s) in runs.items():
        throughput[device, n_fit] = n_fit * model.n_iter_ / fit_s
        print(
            f"{device:>6s} {n_fit:9,d} {fit_s:8.2f} {model.n_iter_:8d} "
            f"{throughput[device, n_fit]:16.3g} {predict_s:28.3f}"
        )
    cpu_run, gpu_run = runs["cpu", n_compare], runs["cuda", n_compare]
    print(f"fit speed-up on the same {n_compare:,} rows: {cpu_run[2] / gpu_run[2]:.1f}x")
    print(f"prediction speed-up on {n_samples:,} rows:   {cpu_run[3] / gpu_run[3]:.1f}x")
    ratio = throughput["cuda", n_samples] / throughput["cpu", n_compare]
    print(f"throughput, GPU on {n_samples:,} rows over CPU on {n_compare:,}: {ratio:.1f}x")

# %%
# Do the CPU and GPU fits agree?
# ------------------------------
# On the same rows the GPU runs the same EM from the same initialisation, in
# the same float64 precision, so the predictions should agree far within
# ``1e-3`` of their scale (the largest absolute prediction).
if gpu:
    cpu_prediction, gpu_prediction = cpu_run[1], gpu_run[1]
    print("GPU predictions are NumPy arrays:", type(gpu_prediction).__module__ == "numpy")
    print("same number of EM iterations:", cpu_run[0].n_iter_ == gpu_run[0].n_iter_)
    scale = np.abs(cpu_prediction).max()
    max_rel_diff = np.abs(gpu_prediction - cpu_prediction).max() / scale
    print(f"max relative difference of the predictions: {max_rel_diff:.2e}")
    print("agree to 1e-3:", bool(max_rel_diff < 1e-3))
    for (device, n_fit), (_, prediction, _, _) in runs.items():
        r2 = r2_score(y, prediction)
        print(f"R^2 on all {n_samples:,} rows, {device} fit on {n_fit:,} rows: {r2:.4f}")

# %%
# The fits' throughput (left) and the prediction times (right), on
# logarithmic scales.
if gpu:
    labels = [f"{device}\n{n_fit:,} rows" for device, n_fit in runs]
    colors = ["tab:blue" if device == "cpu" else "tab:green" for device, _ in runs]
    fig, (ax_fit, ax_predict) = plt.subplots(1, 2, figsize=(10, 4))
    ax_fit.bar(labels, list(throughput.values()), color=colors)
    ax_fit.set_ylabel("rows x EM iterations per second")
    ax_fit.set_title("Fit throughput")
    ax_predict.bar(labels, [run[3] for run in runs.values()], color=colors)
    ax_predict.set_ylabel("seconds")
    ax_predict.set_title(f"Predicting {n_samples:,} rows")
    for ax in (ax_fit, ax_predict):
        ax.set_yscale("log")
    fig.suptitle(f"CPU ({os.cpu_count()} cores) against {gpu_name}")
    fig.tight_layout()
    plt.show()
