"""Peak memory of predicting many rows with a mixture of 16 linear experts.

MixtureOfExpertsRegressor(n_experts=16) with the built-in ridge experts is
fitted on 20000 rows of the regime data (d=50); then predict,
predict(return_std=True) and gate_proba are each called on X of --rows x 50
(5,000,000 x 50 by default: 2 GB in float64, 1 GB in float32), in float64 and
in float32. Each call runs in a fresh subprocess, so that peaks do not mix: it
loads the pickled model, warms the call up on 100 rows, creates X with
``np.random.default_rng(0).standard_normal(..., dtype=...)`` and reads the
process's peak resident set (``getrusage(RUSAGE_SELF).ru_maxrss``) right
after creating X and after the call. "Peak above X" is the difference: what
the call needs on top of its input. BLAS and OpenMP are held to one thread
(threadpoolctl) in the fit and in the subprocesses. The target is about 1 GiB
at most, whatever the number of rows.

A fit is measured the same way, in float64 and in float32: a mixture of
4 experts, 3 EM iterations (merge-and-split trials may add some), on
--fit-rows x 50 standard normal rows (200,000 by default) whose target is
``where(x0 > 0, 2 x1, -x2)``; its "output" is the gate's coefficients, which
take X's type.

Before anything runs, the memory the machine has available is checked
against what the largest call may need; if --rows would not fit, the script
says so and stops (pass a smaller --rows, or --force).

    python benchmarks/memory.py [--rows 5000000] [--fit-rows 200000]
                                [--working-memory MIB] [--out benchmarks/results]

--working-memory sets ``sklearn.set_config(working_memory=...)`` inside the
subprocesses (default: scikit-learn's own, 1024 MiB). Writes memory.json and
memory.md under --out.
"""

import argparse
import json
import os
import pickle
import platform
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import sklearn
from _report import write_report  # beside this script
from threadpoolctl import threadpool_limits

import skmoe
from skmoe import MixtureOfExpertsRegressor
from skmoe.datasets import make_regime_regression

MIB = 2**20
N_FEATURES = 50
N_EXPERTS = 16
TRAIN_ROWS = 20000
TARGET_MIB = 1024  # what a call may need on top of X
METHODS = ("predict", "predict(return_std=True)", "gate_proba", "fit")
DTYPES = ("float64", "float32")
FIT_EXPERTS = 4
FIT_ITER = 3


def peak_rss_mib():
    # ru_maxrss is in KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fit_target(X):
    """A piecewise-linear target of X, in float64 whatever X's type."""
    return np.where(X[:, 0] > 0, 2.0 * X[:, 1], -X[:, 2]).astype(np.float64)


def call(model, method, X):
    if method == "fit":
        model = MixtureOfExpertsRegressor(n_experts=FIT_EXPERTS, max_iter=FIT_ITER, random_state=0)
        return (model.fit(X, fit_target(X)).gate_.coef_,)
    if method == "predict":
        return (model.predict(X),)
    if method == "predict(return_std=True)":
        return model.predict(X, return_std=True)
    if method == "gate_proba":
        return (model.gate_proba(X),)
    raise ValueError(method)


def child(spec):
    """One measurement, in its own process; prints a JSON line."""
    spec = json.loads(spec)
    warnings.simplefilter("ignore")
    threadpool_limits(limits=1)
    if spec["working_memory"] is not None:
        sklearn.set_config(working_memory=spec["working_memory"])
    with open(spec["model"], "rb") as f:
        model = pickle.load(f)
    dtype = np.dtype(spec["dtype"])
    rng = np.random.default_rng(0)
    call(model, spec["method"], rng.standard_normal((100, N_FEATURES), dtype=dtype))  # warm-up
    before_x = peak_rss_mib()
    rows = spec["fit_rows"] if spec["method"] == "fit" else spec["rows"]
    X = np.random.default_rng(0).standard_normal((rows, N_FEATURES), dtype=dtype)
    after_x = peak_rss_mib()
    start = time.perf_counter()
    outputs = call(model, spec["method"], X)
    seconds = time.perf_counter() - start
    after_call = peak_rss_mib()
    print(
        json.dumps(
            {
                "method": spec["method"],
                "input_dtype": spec["dtype"],
                "rows": rows,
                "x_mib": X.nbytes / MIB,
                "peak_before_x_mib": before_x,
                "peak_after_x_mib": after_x,
                "peak_after_call_mib": after_call,
                "peak_above_x_mib": after_call - after_x,
                "call_s": seconds,
                "output_mib": sum(out.nbytes for out in outputs) / MIB,
                "output_dtypes": [str(out.dtype) for out in outputs],
                "output_shapes": [list(out.shape) for out in outputs],
                "working_memory": sklearn.get_config()["working_memory"],
            }
        )
    )


def available_mib():
    """MemAvailable of /proc/meminfo (the 'available' column of free)."""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    return None


def needed_mib(rows):
    """A generous bound on one subprocess's peak without chunking: X in
    float64, a standardised copy of it, and a dozen (rows, n_experts) float64
    arrays (logits, probabilities, expert means, spreads), plus 1 GiB."""
    x_mib = rows * N_FEATURES * 8 / MIB
    return 2 * x_mib + 12 * rows * N_EXPERTS * 8 / MIB + 1024


def source_version():
    """The commit of the checkout this runs in, with "-dirty" for local changes."""
    try:
        return subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def fit_model(path):
    X, y = make_regime_regression(n_samples=TRAIN_ROWS, n_features=N_FEATURES, random_state=0)
    with threadpool_limits(limits=1):
        model = MixtureOfExpertsRegressor(n_experts=N_EXPERTS, random_state=0).fit(X, y)
    with open(path, "wb") as f:
        pickle.dump(model, f)
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--fit-rows", type=int, default=200_000)
    parser.add_argument("--working-memory", type=int, default=None, metavar="MIB")
    parser.add_argument("--force", action="store_true", help="run even if memory looks short")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return

    available, needed = available_mib(), needed_mib(args.rows)
    print(
        f"memory available: {available:.0f} MiB; a {args.rows}-row call may need up to "
        f"{needed:.0f} MiB"
    )
    if available is not None and available < needed and not args.force:
        sys.exit(
            f"{args.rows} rows x {N_FEATURES} may not fit in the {available:.0f} MiB "
            f"available (up to {needed:.0f} MiB needed): pass a smaller --rows "
            "(or --force)."
        )

    warnings.simplefilter("ignore")
    rows = []
    start_all = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        model_path = os.path.join(tmp, "model.pkl")
        model = fit_model(model_path)
        for dtype in DTYPES:
            for method in METHODS:
                spec = {
                    "model": model_path,
                    "method": method,
                    "dtype": dtype,
                    "rows": args.rows,
                    "fit_rows": args.fit_rows,
                    "working_memory": args.working_memory,
                }
                start = time.perf_counter()
                proc = subprocess.run(
                    [sys.executable, __file__, "--child", json.dumps(spec)],
                    capture_output=True,
                    text=True,
                )
                wall = time.perf_counter() - start
                if proc.returncode != 0:
                    row = {
                        "method": method,
                        "input_dtype": dtype,
                        "rows": args.fit_rows if method == "fit" else args.rows,
                        "error": f"exit {proc.returncode}: {proc.stderr.strip()[-2000:]}",
                    }
                else:
                    row = json.loads(proc.stdout.strip().splitlines()[-1])
                row["subprocess_s"] = wall
                rows.append(row)
                if "error" in row:
                    print(f"{dtype} {method}: {row['error']}", flush=True)
                else:
                    above, seconds = row["peak_above_x_mib"], row["call_s"]
                    print(f"{dtype} {method}: peak above X {above:.0f} MiB, {seconds:.1f} s")
    total_s = time.perf_counter() - start_all

    working_memory = next((r["working_memory"] for r in rows if "working_memory" in r), None)
    result = {
        "skmoe": skmoe.__version__,
        "source": source_version(),
        "sklearn": sklearn.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "rows": args.rows,
        "fit_rows": args.fit_rows,
        "fit_experts": FIT_EXPERTS,
        "fit_max_iter": FIT_ITER,
        "n_features": N_FEATURES,
        "n_experts": N_EXPERTS,
        "train_rows": TRAIN_ROWS,
        "n_iter": int(model.n_iter_),
        "working_memory_mib": working_memory,
        "target_above_x_mib": TARGET_MIB,
        "memory_available_mib": available,
        "total_s": total_s,
        "results": rows,
    }
    lines = [
        "# Peak memory of predicting many rows",
        "",
        f"MixtureOfExpertsRegressor(n_experts={N_EXPERTS}) with the built-in ridge experts, "
        f"fitted on {TRAIN_ROWS} rows of the regime data (d={N_FEATURES}); each call on "
        f"X of {args.rows} x {N_FEATURES} standard normal rows, in a fresh subprocess. "
        '"Peak above X" is the process\'s peak resident set after the call less its peak '
        "right after creating X (getrusage's ru_maxrss); it includes the "
        'returned arrays ("output"). The target is a peak above X of at most about '
        f"{TARGET_MIB} MiB. `fit` is a fit of {FIT_EXPERTS} experts, max_iter={FIT_ITER}, "
        f"on {args.fit_rows} x {N_FEATURES} rows (target where(x0 > 0, 2 x1, -x2)); its output "
        "is the gate's coefficients. BLAS and OpenMP held to one thread. "
        f"scikit-learn's working_memory: {working_memory} MiB. "
        f"Source: {result['source']}. "
        "Generated by `python benchmarks/memory.py"
        + (f" --rows {args.rows}" if args.rows != 5_000_000 else "")
        + (f" --fit-rows {args.fit_rows}" if args.fit_rows != 200_000 else "")
        + (f" --working-memory {args.working_memory}" if args.working_memory else "")
        + "`.",
        "",
        "| input | call | rows | X (MiB) | peak above X (MiB) | output (MiB) "
        "| temporaries: peak above X less output (MiB) | within target | call (s) | output dtype |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        if "error" in row:
            lines.append(
                f"| {row['input_dtype']} | `{row['method']}` | {row['rows']} | | failed: "
                f"{row['error'].splitlines()[-1]} | | | | | |"
            )
            continue
        above, output = row["peak_above_x_mib"], row["output_mib"]
        temporaries, within = max(above - output, 0), "yes" if above <= TARGET_MIB else "no"
        lines.append(
            f"| {row['input_dtype']} | `{row['method']}` | {row['rows']} | {row['x_mib']:.0f} | "
            f"{above:.0f} | "
            f"{output:.0f} | {temporaries:.0f} | {within} | "
            f"{row['call_s']:.2f} | {', '.join(sorted(set(row['output_dtypes'])))} |"
        )
    lines += ["", f"Whole run (fit and {len(rows)} subprocesses): {total_s:.0f} s."]
    markdown = "\n".join(lines) + "\n"
    write_report(args.out, "memory", result, markdown)


if __name__ == "__main__":
    main()
