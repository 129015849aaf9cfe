"""Fit time of a mixture of tree experts with its expert fits run in parallel.

Each M-step refits the K experts through joblib; ``n_jobs`` sets how many run
at once. MixtureOfExpertsRegressor with 8 ``DecisionTreeRegressor(max_depth=8)``
experts on the piecewise-linear regime data (n=50000 training rows, d=8,
10000 more held out), a fixed number of EM iterations (``tol=0``), fitted with
``n_jobs=1`` and ``n_jobs=2``, interleaved, median of --repeats. BLAS and
OpenMP are held to one thread (threadpoolctl; joblib's worker processes get
``cpu_count // n_jobs`` threads each), so that the only parallelism measured is
joblib's. The worker pool is started by a small fit before the timings. Both
fits must give identical predictions.

    python benchmarks/parallel.py [--repeats 3] [--n-samples 50000] [--max-iter 10]
                                  [--out benchmarks/results]

Writes parallel.json and parallel.md under --out.
"""

import argparse
import os
import platform
import time
import warnings
from pathlib import Path

import joblib
import numpy as np
import sklearn
from _report import write_report  # beside this script
from _timing import ExpertFitTimer
from sklearn.tree import DecisionTreeRegressor
from threadpoolctl import threadpool_info, threadpool_limits

import skmoe
from skmoe import MixtureOfExpertsRegressor
from skmoe.datasets import make_regime_regression

N_EXPERTS = 8
MAX_DEPTH = 8
N_TEST = 10000


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _machine_busy_s():
    """CPU seconds the whole machine has spent busy (all cores), from /proc/stat."""
    with open("/proc/stat") as f:
        ticks = [int(v) for v in f.readline().split()[1:]]
    idle = ticks[3] + ticks[4]  # idle and iowait
    return (sum(ticks[:8]) - idle) / _TICK


def _own_cpu_s():
    """CPU seconds of this process and its descendants (joblib's workers), by pid."""
    parents, times = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        times[int(entry)] = (int(fields[11]) + int(fields[12])) / _TICK  # utime + stime
    own, grew = {os.getpid()}, True
    while grew:
        children = {pid for pid, parent in parents.items() if parent in own} - own
        own |= children
        grew = bool(children)
    return {pid: times[pid] for pid in own if pid in times}


class _CpuMeter:
    """Cores used by this process tree, and by every other process, over a block.
    Linux only (/proc); elsewhere both stay None."""

    def __enter__(self):
        try:
            self._busy, self._own = _machine_busy_s(), _own_cpu_s()
        except OSError:
            self._busy = None
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        wall = time.perf_counter() - self._start
        self.own_cores = self.other_cores = float("nan")
        if self._busy is None:
            return
        busy, own = _machine_busy_s() - self._busy, _own_cpu_s()
        own = sum(t - self._own.get(pid, 0.0) for pid, t in own.items())
        self.own_cores, self.other_cores = own / wall, max(busy - own, 0.0) / wall


def _wait_until_idle(timeout, threshold=0.2):
    """Wait up to ``timeout`` seconds for the machine's other processes to use
    under ``threshold`` cores over a 2-second sample; whether they did."""
    deadline = time.perf_counter() + timeout
    while True:
        with _CpuMeter() as meter:
            time.sleep(2)
        if not meter.other_cores >= threshold:  # nan (no /proc) counts as idle
            return True
        if time.perf_counter() > deadline:
            return False


def make_model(n_jobs, max_iter):
    return MixtureOfExpertsRegressor(
        DecisionTreeRegressor(max_depth=MAX_DEPTH),
        n_experts=N_EXPERTS,
        max_iter=max_iter,
        tol=0.0,  # never converged: every fit runs max_iter iterations
        n_jobs=n_jobs,
        random_state=0,
    )


def run(n_jobs, data, max_iter):
    X_train, X_test, y_train, y_test = data
    model = make_model(n_jobs, max_iter)
    with ExpertFitTimer() as timer, _CpuMeter() as cpu:
        start = time.perf_counter()
        model.fit(X_train, y_train)
        fit_s = time.perf_counter() - start
    return model, {
        "fit_s": fit_s,
        "own_cores": cpu.own_cores,
        "other_cores": cpu.other_cores,
        "expert_fit_s": timer.seconds,
        "m_steps": timer.calls,
        "n_iter": int(model.n_iter_),
        "r2": float(model.score(X_test, y_test)),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n-samples", type=int, default=50000)
    parser.add_argument("--max-iter", type=int, default=10)
    parser.add_argument(
        "--wait-idle",
        type=float,
        default=300,
        metavar="SECONDS",
        help="before each fit, wait up to this long for other processes to leave the cores",
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # capped runs' ConvergenceWarnings: not what is measured

    X, y = make_regime_regression(n_samples=args.n_samples + N_TEST, random_state=0)
    data = (X[: args.n_samples], X[args.n_samples :], y[: args.n_samples], y[args.n_samples :])
    n_jobs_values = (1, 2)
    runs = {n_jobs: [] for n_jobs in n_jobs_values}
    predictions = {}
    with threadpool_limits(limits=1):
        limited = [(pool["internal_api"], pool["num_threads"]) for pool in threadpool_info()]
        # start joblib's worker processes outside the timings
        make_model(2, 2).fit(data[0][:2000], data[2][:2000])
        for repeat in range(args.repeats):
            for n_jobs in n_jobs_values:
                idle = _wait_until_idle(args.wait_idle) if args.wait_idle > 0 else None
                model, row = run(n_jobs, data, args.max_iter)
                row["idle_before"] = idle
                runs[n_jobs].append(row)
                print(
                    f"repeat {repeat}, n_jobs={n_jobs}: fit {row['fit_s']:.2f} s, "
                    f"cores used {row['own_cores']:.2f}, by other processes "
                    f"{row['other_cores']:.2f}",
                    flush=True,
                )
                mean, std = model.predict(data[1], return_std=True)
                current = np.concatenate([mean, std, model.gate_proba(data[1]).ravel()])
                predictions.setdefault(n_jobs, current)
                # every repeat of every n_jobs must give the same model
                if not np.array_equal(current, predictions[n_jobs_values[0]]):
                    raise AssertionError(f"n_jobs={n_jobs}, repeat {repeat}: predictions differ")
    identical = True  # the loop above raises otherwise

    summary = {
        f"n_jobs={n_jobs}": {
            key: float(np.median([r[key] for r in results]))
            for key in results[0]
            if isinstance(results[0][key], (int, float)) and not isinstance(results[0][key], bool)
        }
        for n_jobs, results in runs.items()
    }
    serial, parallel = summary["n_jobs=1"], summary["n_jobs=2"]
    disturbed = sum(r["other_cores"] > 0.2 for results in runs.values() for r in results)
    speedup = serial["fit_s"] / parallel["fit_s"]
    expert_speedup = serial["expert_fit_s"] / parallel["expert_fit_s"]
    serial_share = serial["expert_fit_s"] / serial["fit_s"]
    # Amdahl: the best a 2-way split of the expert fits alone can give
    amdahl_bound = 1 / ((1 - serial_share) + serial_share / 2)
    result = {
        "skmoe": skmoe.__version__,
        "sklearn": sklearn.__version__,
        "joblib": joblib.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "thread_pools_in_parent": limited,
        "wait_idle_s": args.wait_idle,
        "disturbed_fits": disturbed,
        "n_samples": args.n_samples,
        "n_test": N_TEST,
        "n_experts": N_EXPERTS,
        "max_depth": MAX_DEPTH,
        "max_iter": args.max_iter,
        "repeats": args.repeats,
        "runs": {f"n_jobs={n_jobs}": results for n_jobs, results in runs.items()},
        "summary": summary,
        "fit_speedup": speedup,
        "expert_fit_speedup": expert_speedup,
        "expert_fit_share_serial": serial_share,
        "amdahl_bound_2_workers": amdahl_bound,
        "identical_predictions": identical,
    }
    lines = [
        "# Parallel expert fits: fit time against n_jobs",
        "",
        f"{N_EXPERTS} `DecisionTreeRegressor(max_depth={MAX_DEPTH})` experts, regime data "
        f"(n={args.n_samples} training rows, d=8), max_iter={args.max_iter} with tol=0 "
        f"(every fit runs all iterations), random_state=0; BLAS and OpenMP held to one "
        f"thread; {os.cpu_count()} cores; median of {args.repeats} runs, n_jobs=1 and "
        "n_jobs=2 interleaved in one process, joblib's worker pool started beforehand. "
        "Generated by `python benchmarks/parallel.py`.",
        "",
        "| n_jobs | whole fit (s) | expert fits (s) | rest of the fit (s) | M-steps "
        "| held-out R^2 |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in summary.items():
        lines.append(
            f"| {name.split('=')[1]} | {row['fit_s']:.2f} | {row['expert_fit_s']:.2f} | "
            f"{row['fit_s'] - row['expert_fit_s']:.2f} | {row['m_steps']:.0f} | "
            f"{row['r2']:.4f} |"
        )
    lines += [
        "",
        f"Cores used during the fits (median): by the fit itself {serial['own_cores']:.2f} "
        f"with n_jobs=1 and {parallel['own_cores']:.2f} with n_jobs=2; by other processes "
        f"on the machine {serial['other_cores']:.2f} and {parallel['other_cores']:.2f} "
        "(/proc accounting). Each fit waited for the cores to be idle first "
        f"(up to {args.wait_idle:.0f} s); fits during which other processes took more than "
        f"0.2 cores: {disturbed} of {2 * args.repeats}.",
        "",
        f"Speed-up of n_jobs=2: {speedup:.2f}x on the whole fit, {expert_speedup:.2f}x on "
        f"the expert fits. The expert fits are {100 * serial_share:.0f}% of the serial fit; "
        f"the gate's M-step, the E-step and the initialisation stay serial, which caps "
        f"the whole fit at {amdahl_bound:.2f}x on 2 workers (Amdahl).",
        "",
        "Predictions (mean, standard deviation and gate probabilities on the held-out "
        "rows) identical between n_jobs=1 and n_jobs=2 and across repeats: "
        f"{'yes' if identical else 'no'}.",
    ]
    markdown = "\n".join(lines) + "\n"
    write_report(args.out, "parallel", result, markdown)


if __name__ == "__main__":
    main()
