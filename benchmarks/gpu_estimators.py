"""Estimators as experts in a GPU fit: the bytes moved between device and
host per EM iteration, and the time, for experts that take CuPy arrays and
for experts that run on the host.

Regime data as in ``gpu_fit.py`` (float32 rows, 8 regions of space, each its
own linear law, noise sd 0.1), scored by R^2 on 1,000,000 further rows.

- Device experts: 8 ``CupyRidge`` (``tests/_cupy_ridge.py``, a weighted
  ridge regression on CuPy arrays) on ``--n`` rows, and 8 XGBoost
  regressors with ``device="cuda"`` where XGBoost is installed.
- Host experts: 8 scikit-learn ``Ridge`` on ``--host-n`` rows, under a
  dense gate and under top-2.

Bytes are counted where skmoe's estimator experts move arrays: copies to
the host (``to_numpy``) and host outputs moved to the device
(``asarray``).

    PYTHONPATH=. python3 benchmarks/gpu_estimators.py [--n 10000000] [--host-n 1000000]

Writes gpu_estimators.json and gpu_estimators.md under --out.
"""

import argparse
import sys
import time
from pathlib import Path

import cupy as cp
import numpy as np
from _report import write_report  # beside this script
from gpu_em import held_out_regime_data, r2
from sklearn.linear_model import Ridge

import skmoe.experts._estimators as estimators
from skmoe import MixtureOfExpertsRegressor

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
from _cupy_ridge import CupyRidge  # noqa: E402  (the tests' own device estimator)

N_EXPERTS = 8


class Transfers:
    """Counts the bytes the estimator experts move: device to host through
    their ``to_numpy``, host to device through their namespace's ``asarray``."""

    def __init__(self):
        self.to_host = self.to_device = 0

    def __enter__(self):
        self._saved = estimators.to_numpy, estimators.get_namespace
        to_numpy, get_namespace = self._saved
        counter = self

        def counted_to_numpy(a):
            if type(a).__module__.startswith("cupy"):
                counter.to_host += a.nbytes
            return to_numpy(a)

        class CountingNamespace:
            def __init__(self, xp):
                self.xp = xp

            def __getattr__(self, name):
                return getattr(self.xp, name)

            def asarray(self, a, *args, **kwargs):
                if self.xp is cp and isinstance(a, np.ndarray):
                    counter.to_device += a.nbytes
                return self.xp.asarray(a, *args, **kwargs)

        estimators.to_numpy = counted_to_numpy
        estimators.get_namespace = lambda *a: CountingNamespace(get_namespace(*a))
        return self

    def __exit__(self, *exc):
        estimators.to_numpy, estimators.get_namespace = self._saved


def run(name, expert, X, y, X_test, y_test, **params):
    """One GPU fit: its time, R^2, iterations and bytes moved per iteration."""
    model = MixtureOfExpertsRegressor(
        expert, n_experts=N_EXPERTS, random_state=0, device="cuda", **params
    )
    with Transfers() as moved:
        cp.cuda.Device().synchronize()
        start = time.perf_counter()
        model.fit(X, y)
        cp.cuda.Device().synchronize()
        seconds = time.perf_counter() - start
    row = dict(
        experts=name,
        rows=len(X),
        top_k=params.get("top_k"),
        seconds=seconds,
        r2=r2(model.predict(X_test), y_test),
        n_iter=model.n_iter_,
        to_host_per_iteration=moved.to_host / model.n_iter_,
        to_device_per_iteration=moved.to_device / model.n_iter_,
        x_bytes=X.nbytes,
    )
    print(row, flush=True)
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000_000)
    parser.add_argument("--host-n", type=int, default=1_000_000)
    parser.add_argument("--d", type=int, default=32)
    parser.add_argument("--max-iter", type=int, default=20)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    fit = dict(max_iter=args.max_iter)
    X, y, X_test, y_test, ceiling = held_out_regime_data(args.n, args.d, N_EXPERTS, 0)
    run("warm-up", CupyRidge(), X[:100_000], y[:100_000], X_test, y_test, max_iter=2)
    rows = [run("CupyRidge", CupyRidge(), X, y, X_test, y_test, **fit)]
    skipped = []
    try:
        from xgboost import XGBRegressor

        xgb = XGBRegressor(device="cuda", n_estimators=50, max_depth=4)
        rows.append(run("XGBoost (cuda)", xgb, X, y, X_test, y_test, **fit))
    except ImportError:
        skipped.append("XGBoost is not installed: its row is skipped.")
    X, y = X[: args.host_n], y[: args.host_n]
    for top_k in (None, 2):
        rows.append(run("Ridge (host)", Ridge(), X, y, X_test, y_test, top_k=top_k, **fit))
    device = cp.cuda.runtime.getDeviceProperties(0)["name"].decode()
    lines = [
        "# Estimators as experts on the GPU",
        "",
        f"{device}; regime data, {args.d} float32 features, {N_EXPERTS} regimes, "
        f"{N_EXPERTS} experts, `max_iter={args.max_iter}` (per EM run: merge-and-split "
        f"trials add runs); R^2 on "
        f"{len(X_test):,} further rows (noise ceiling {ceiling:.4f}). Bytes moved per EM "
        "iteration by the estimator experts, against the bytes of X. "
        + " ".join(skipped)
        + " Generated by `PYTHONPATH=. python3 benchmarks/gpu_estimators.py`.",
        "",
        "| experts | rows | top_k | seconds | iterations | R^2 | to host / iteration "
        "| to device / iteration | X |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['experts']} | {r['rows']:,} | {r['top_k']} | {r['seconds']:.2f} | {r['n_iter']} "
        f"| {r['r2']:.4f} | {r['to_host_per_iteration'] / 2**20:.1f} MiB "
        f"| {r['to_device_per_iteration'] / 2**20:.1f} MiB | {r['x_bytes'] / 2**20:.0f} MiB |"
        for r in rows
    ]
    result = dict(device=device, d=args.d, ceiling=ceiling, rows=rows)
    write_report(args.out, "gpu_estimators", result, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
