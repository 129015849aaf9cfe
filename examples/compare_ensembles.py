"""
When does a mixture of experts beat the ensembles you already use?
==================================================================

A mixture of experts is built for data whose law changes from one region of
the input to another. This script puts skmoe's estimators next to the models
one would otherwise reach for (a single linear model or tree, bagging, random
forests, gradient boosting, stacking, voting) on two synthetic data sets with
regimes, where a mixture should win, and on scikit-learn's bundled data sets,
where nothing was built in its favour. LightGBM (plain and with linear trees)
and XGBoost join them where installed (``pip install ".[peers]"``); the
report names those skipped. skmoe's first model is its default.

Every model is evaluated with the same cross-validation folds, behind a
``StandardScaler``, with the settings listed below and no tuning per data set.
Run it as::

    python examples/compare_ensembles.py [--quick] [--out DIR]

It prints a table per data set and writes ``compare_ensembles.md``,
``compare_ensembles.json`` and ``compare_ensembles.png`` (if matplotlib is
installed) to ``DIR`` (default ``results``). ``--quick`` uses 3 folds, smaller
synthetic data and one bundled data set per task.
"""

# %%
# Models
# ------
# One dict per task, the same for every data set. Each model is put behind a
# ``StandardScaler`` when evaluated, so the linear models and the gates see
# standardised features. ``n_jobs`` stays unset everywhere and ``main`` limits
# OpenMP and BLAS to one thread, so every fit time is that of one core; it
# also keeps HistGradientBoosting's OpenMP threads from stalling when other
# processes share the cores.
import argparse
import importlib
import importlib.metadata
import importlib.util
import json
import math
import platform
import time
import warnings
from collections import Counter
from pathlib import Path

import joblib
import numpy as np
import scipy
import sklearn
import threadpoolctl
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_wine
from sklearn.ensemble import (
    BaggingClassifier,
    BaggingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
    StackingClassifier,
    StackingRegressor,
    VotingClassifier,
    VotingRegressor,
)
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import KFold, StratifiedKFold, cross_validate
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
from threadpoolctl import threadpool_info, threadpool_limits

import skmoe
from skmoe import MixtureOfExpertsClassifier, MixtureOfExpertsRegressor
from skmoe.datasets import make_regime_classification, make_regime_regression

REGRESSORS = {
    # the default: built-in ridge experts, as many as BIC says (n_experts="auto")
    "MoE: default (auto ridge experts)": MixtureOfExpertsRegressor(random_state=0),
    "MoE: 4 tree experts": MixtureOfExpertsRegressor(
        DecisionTreeRegressor(max_depth=5, random_state=0), n_experts=4, random_state=0
    ),
    "MoE: top-2 of 8 tree experts": MixtureOfExpertsRegressor(
        DecisionTreeRegressor(max_depth=5, random_state=0), n_experts=8, top_k=2, random_state=0
    ),
    "Ridge": Ridge(),
    "DecisionTree(max_depth=5)": DecisionTreeRegressor(max_depth=5, random_state=0),
    "Bagging(50 trees)": BaggingRegressor(
        DecisionTreeRegressor(random_state=0), n_estimators=50, random_state=0
    ),
    "Bagging(20 ridges)": BaggingRegressor(Ridge(), n_estimators=20, random_state=0),
    "RandomForest(200)": RandomForestRegressor(n_estimators=200, random_state=0),
    "HistGradientBoosting": HistGradientBoostingRegressor(random_state=0),
    "Stacking(ridge, tree, knn)": StackingRegressor(
        [
            ("ridge", Ridge()),
            ("tree", DecisionTreeRegressor(max_depth=5, random_state=0)),
            ("knn", KNeighborsRegressor()),
        ],
        final_estimator=Ridge(),
    ),
    "Voting(ridge, tree, knn)": VotingRegressor(
        [
            ("ridge", Ridge()),
            ("tree", DecisionTreeRegressor(max_depth=5, random_state=0)),
            ("knn", KNeighborsRegressor()),
        ]
    ),
}

CLASSIFIERS = {
    # the default: built-in multinomial logistic experts, solved together, as
    # many as BIC says (n_experts="auto")
    "MoE: default (auto logistic experts)": MixtureOfExpertsClassifier(random_state=0),
    "MoE: 4 tree experts": MixtureOfExpertsClassifier(
        DecisionTreeClassifier(max_depth=5, random_state=0), n_experts=4, random_state=0
    ),
    "MoE: top-2 of 8 tree experts": MixtureOfExpertsClassifier(
        DecisionTreeClassifier(max_depth=5, random_state=0), n_experts=8, top_k=2, random_state=0
    ),
    "LogisticRegression": LogisticRegression(max_iter=1000, random_state=0),
    "DecisionTree(max_depth=5)": DecisionTreeClassifier(max_depth=5, random_state=0),
    "Bagging(50 trees)": BaggingClassifier(
        DecisionTreeClassifier(random_state=0), n_estimators=50, random_state=0
    ),
    "Bagging(20 logistic)": BaggingClassifier(
        LogisticRegression(max_iter=1000, random_state=0), n_estimators=20, random_state=0
    ),
    "RandomForest(200)": RandomForestClassifier(n_estimators=200, random_state=0),
    "HistGradientBoosting": HistGradientBoostingClassifier(random_state=0),
    "Stacking(logistic, tree, knn)": StackingClassifier(
        [
            ("logistic", LogisticRegression(max_iter=1000, random_state=0)),
            ("tree", DecisionTreeClassifier(max_depth=5, random_state=0)),
            ("knn", KNeighborsClassifier()),
        ],
        final_estimator=LogisticRegression(max_iter=1000, random_state=0),
    ),
    "Voting(logistic, tree, knn)": VotingClassifier(
        [
            ("logistic", LogisticRegression(max_iter=1000, random_state=0)),
            ("tree", DecisionTreeClassifier(max_depth=5, random_state=0)),
            ("knn", KNeighborsClassifier()),
        ],
        voting="soft",
    ),
}


def add_boosting_peers(models):
    """Add LightGBM (plain, and with linear trees: the closest boosting relative
    of a mixture of linear experts) and XGBoost, where installed (the
    ``peers`` extra); return the names of those skipped."""
    skipped = []
    if importlib.util.find_spec("lightgbm") is None:
        skipped.append("LightGBM (not installed)")
    else:
        import lightgbm

        for task, family in (
            ("regression", lightgbm.LGBMRegressor),
            ("classification", lightgbm.LGBMClassifier),
        ):
            models[task]["LightGBM"] = family(n_jobs=1, verbose=-1, random_state=0)
            models[task]["LightGBM(linear_tree)"] = family(
                linear_tree=True, n_jobs=1, verbose=-1, random_state=0
            )
    if importlib.util.find_spec("xgboost") is None:
        skipped.append("XGBoost (not installed)")
    else:
        import xgboost

        models["regression"]["XGBoost"] = xgboost.XGBRegressor(n_jobs=1, random_state=0)
        models["classification"]["XGBoost"] = xgboost.XGBClassifier(n_jobs=1, random_state=0)
    return skipped


MODELS = {"regression": REGRESSORS, "classification": CLASSIFIERS}
SKIPPED = add_boosting_peers(MODELS)
METRICS = {"regression": "r2", "classification": "accuracy"}
METRIC_NAMES = {"regression": "R^2", "classification": "accuracy"}


def is_skmoe(model):
    """Whether ``model`` is one of skmoe's estimators."""
    return isinstance(model, MixtureOfExpertsRegressor | MixtureOfExpertsClassifier)


# %%
# Data sets
# ---------
# Two with regimes (four Voronoi cells, a linear law in each), where a
# mixture has the right shape, and four of scikit-learn's bundled data sets,
# where it has no head start.
def load_datasets(quick):
    """Return ``{name: (task, X, y)}``; ``quick`` keeps one bundled set per task."""
    n_samples = 2000 if quick else 10000
    datasets = {
        "regime regression": (
            "regression",
            *make_regime_regression(n_samples=n_samples, random_state=0),
        ),
        "regime classification": (
            "classification",
            *make_regime_classification(n_samples=n_samples, n_classes=3, random_state=0),
        ),
        "diabetes": ("regression", *load_diabetes(return_X_y=True)),
        "breast_cancer": ("classification", *load_breast_cancer(return_X_y=True)),
    }
    if not quick:
        datasets["wine"] = ("classification", *load_wine(return_X_y=True))
        datasets["digits"] = ("classification", *load_digits(return_X_y=True))
    return datasets


# %%
# Evaluation
# ----------
# The folds are fixed per data set (same seed, stratified for classification),
# so every model sees exactly the same training and test rows and the fold
# scores of two models can be compared fold by fold.
def evaluate(name, task, X, y, n_splits):
    """Cross-validate every model of ``task`` on one data set; return its results."""
    if task == "regression":
        cv = KFold(n_splits, shuffle=True, random_state=0)
    else:
        cv = StratifiedKFold(n_splits, shuffle=True, random_state=0)
    results = {}
    for model_name, model in MODELS[task].items():
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            scores = cross_validate(
                make_pipeline(StandardScaler(), model),
                X,
                y,
                scoring=METRICS[task],
                cv=cv,
                return_train_score=False,
                return_estimator=is_skmoe(model),
                error_score="raise",
            )
        elapsed = time.perf_counter() - start
        # Other warnings are counted, not hidden: e.g. EM with tree experts may
        # not settle within max_iter (a tree refit does not maximise the
        # weighted likelihood exactly, so the objective can wobble).
        warned = Counter(f"{w.category.__name__}: {w.message}" for w in caught)
        results[model_name] = {
            "skmoe": is_skmoe(model),
            "params": repr(model),
            "test_scores": scores["test_score"].tolist(),
            "fit_times": scores["fit_time"].tolist(),
            "predict_times": scores["score_time"].tolist(),
            # fsum: the same fold scores in another order give the same mean,
            # so two models tie exactly, not by the rounding of the sum's order
            "mean_score": math.fsum(scores["test_score"]) / len(scores["test_score"]),
            "std_score": float(np.std(scores["test_score"])),
            "mean_fit_time": float(np.mean(scores["fit_time"])),
            "mean_predict_time": float(np.mean(scores["score_time"])),
            "warnings": dict(warned),
            # the experts each fold's fit chose (n_experts="auto") or was given
            "n_experts": [int(p[-1].n_experts_) for p in scores.get("estimator", [])],
        }
        note = "".join(f"; {n}x {m.split(':')[0]}" for m, n in warned.items())
        print(
            f"  {name:22s} {model_name:30s} {METRIC_NAMES[task]} "
            f"{results[model_name]['mean_score']:7.4f}  ({elapsed:6.2f} s{note})",
            flush=True,
        )
    return results


# %%
# Report
# ------
# The summary line is computed from the fold scores: the best skmoe model's
# rank, and its gap to the leader (or to the runner-up, where skmoe leads)
# with the number of folds on which the one beats the other.
def ordinal(n):
    """1 -> '1st', 2 -> '2nd', 11 -> '11th'."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def summarise(results, metric):
    """Where the best skmoe model ranks, and by how much it wins or loses.

    Returns its rank (1 is best; models with equal mean scores share a rank)
    and one line that says so.
    """
    ranked = sorted(results, key=lambda m: results[m]["mean_score"], reverse=True)
    best = next(m for m in ranked if results[m]["skmoe"])
    rank = 1 + sum(results[m]["mean_score"] > results[best]["mean_score"] for m in results)
    other = next(m for m in ranked if m != best) if rank == 1 else ranked[0]
    ours = np.array(results[best]["test_scores"])
    theirs = np.array(results[other]["test_scores"])
    line = (
        f"best skmoe model ({best}) is {ordinal(rank)} of {len(ranked)} "
        f"({metric} {ours.mean():.4f}); "
    )
    leader, runner_up = (ours, theirs) if rank == 1 else (theirs, ours)
    if rank == 1:
        line += f"it leads {other} by {ours.mean() - theirs.mean():.4f}"
    else:
        line += f"{other} leads by {theirs.mean() - ours.mean():.4f}"
    wins, losses = int((leader > runner_up).sum()), int((leader < runner_up).sum())
    return rank, line + f", better on {wins} and worse on {losses} of {ours.size} folds"


def markdown_table(name, entry):
    """The markdown section of one data set: heading, table sorted by score, summary."""
    metric, results = entry["metric"], entry["models"]
    lines = [
        f"## {name} ({entry['task']}, n={entry['n_samples']}, d={entry['n_features']}): "
        f"{metric}, {entry['n_splits']}-fold CV",
        "",
        f"| model | {metric} (mean +- std) | mean fit time (s) | mean predict time (s) "
        "| experts per fold |",
        "|---|---|---|---|---|",
    ]
    for model_name in sorted(results, key=lambda m: results[m]["mean_score"], reverse=True):
        r = results[model_name]
        label = f"**{model_name}**" if r["skmoe"] else model_name
        lines.append(
            f"| {label} | {r['mean_score']:.4f} +- {r['std_score']:.4f} "
            f"| {r['mean_fit_time']:.3f} | {r['mean_predict_time']:.4f} "
            f"| {','.join(map(str, r['n_experts']))} |"
        )
    lines += ["", entry["summary"], ""]
    for model_name, r in results.items():
        for message, count in r["warnings"].items():
            lines.append(f"- {model_name}: {count} of {entry['n_splits']} fits warned: {message}")
    if lines[-1]:
        lines.append("")
    return "\n".join(lines)


def library_versions():
    """The versions of the libraries under the scores, and of matplotlib (None: not installed)."""
    has_matplotlib = importlib.util.find_spec("matplotlib") is not None
    return {
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "joblib": joblib.__version__,
        "threadpoolctl": threadpoolctl.__version__,
        "matplotlib": importlib.metadata.version("matplotlib") if has_matplotlib else None,
        **{
            name: importlib.import_module(name).__version__
            if importlib.util.find_spec(name)
            else None
            for name in ("lightgbm", "xgboost")
        },
    }


def environment_line(versions, blas):
    """One line of the libraries' versions, each BLAS library and the threads it ran on."""
    libraries = [f"{package} {version}" for package, version in versions.items() if version]
    blas_libraries = [
        f"{b['internal_api']} {b['version']} ({b['num_threads']} "
        f"thread{'' if b['num_threads'] == 1 else 's'})"
        for b in blas
    ]
    return f"{', '.join(libraries)}; BLAS: {', '.join(blas_libraries) or 'none found'}."


# %%
# Plot
# ----
# Score against fit time, one panel per data set: the top left is better
# and cheaper. matplotlib is optional.
def plot(report, path):
    """Write score vs mean fit time, one subplot per data set, to ``path``."""
    if importlib.util.find_spec("matplotlib") is None:
        print("matplotlib is not installed: no plot written")
        return False
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    names = list(report)
    n_cols = min(3, len(names))
    n_rows = -(-len(names) // n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(6 * n_cols, 4.5 * n_rows), squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):
        entry = report[name]
        for model_name, r in entry["models"].items():
            style = {"color": "tab:red", "marker": "*", "s": 140} if r["skmoe"] else {}
            ax.scatter(r["mean_fit_time"], r["mean_score"], **{"color": "tab:blue", **style})
            ax.annotate(
                model_name,
                (r["mean_fit_time"], r["mean_score"]),
                fontsize=7,
                xytext=(4, 2),
                textcoords="offset points",
                color="tab:red" if r["skmoe"] else "black",
            )
        ax.set_xscale("log")
        ax.margins(x=0.2)  # room for the labels of the rightmost points
        ax.set_xlabel("mean fit time (s)")
        ax.set_ylabel(entry["metric"])
        ax.set_title(f"{name} ({entry['task']})")
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(names) :]:
        ax.set_visible(False)
    fig.suptitle("Cross-validated score vs fit time; skmoe's estimators are red stars")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


# %%
# Main
# ----
def main(argv=None):
    """Run the comparison; ``argv`` as for ``argparse`` (None: ``sys.argv[1:]``)."""
    parser = argparse.ArgumentParser(
        description="Compare skmoe's mixtures of experts with scikit-learn's ensembles."
    )
    parser.add_argument(
        "--quick", action="store_true", help="3 folds, small synthetic data, 4 data sets"
    )
    parser.add_argument("--out", default="results", help="output folder (default: results)")
    args = parser.parse_args(argv)
    n_splits = 3 if args.quick else 5

    report = {}
    for name, (task, X, y) in load_datasets(args.quick).items():
        print(f"{name}: {task}, n={X.shape[0]}, d={X.shape[1]}", flush=True)
        with threadpool_limits(limits=1):  # one core per fit, see "Models"
            results = evaluate(name, task, X, y, n_splits)
            # the BLAS libraries loaded so far and their threads; one loaded
            # during the fits, after the limit was set, shows its own default
            blas = [
                {key: pool[key] for key in ("internal_api", "version", "num_threads")}
                for pool in threadpool_info()
                if pool["user_api"] == "blas"
            ]
        report[name] = {
            "task": task,
            "metric": METRIC_NAMES[task],
            "n_samples": int(X.shape[0]),
            "n_features": int(X.shape[1]),
            "n_splits": n_splits,
            "models": results,
        }
        report[name]["best_skmoe_rank"], report[name]["summary"] = summarise(
            results, METRIC_NAMES[task]
        )

    versions = library_versions()
    meta = {
        "quick": args.quick,
        "skipped": SKIPPED,
        "skmoe": skmoe.__version__,
        "sklearn": sklearn.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "threads": 1,
        **versions,
        "blas": blas,
    }
    sections = [markdown_table(name, entry) for name, entry in report.items()]
    n_won = sum(entry["best_skmoe_rank"] == 1 for entry in report.values())
    header = (
        "# Mixture of experts vs scikit-learn's ensembles\n\n"
        f"skmoe {skmoe.__version__}, scikit-learn {sklearn.__version__}, "
        f"{platform.machine()}, CPython {platform.python_version()}. Generated by "
        f"`python examples/compare_ensembles.py{' --quick' if args.quick else ''}`. "
        "skmoe's estimators are in bold; predict time includes scoring. Every model "
        "runs on one core: `n_jobs` unset, OpenMP and BLAS limited to one thread.\n\n"
        f"{environment_line(versions, blas)}\n\n"
        f"An skmoe estimator has the best mean score on {n_won} of {len(report)} data sets.\n"
    )
    if SKIPPED:
        header += f'\nPeers skipped: {"; ".join(SKIPPED)}; `pip install ".[peers]"` adds them.\n'
        print("Peers skipped: " + "; ".join(SKIPPED))
    markdown = "\n".join([header, *sections])
    print()
    print(markdown)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare_ensembles.md").write_text(markdown)
    (out / "compare_ensembles.json").write_text(
        json.dumps({"meta": meta, "datasets": report}, indent=2)
    )
    plot(report, out / "compare_ensembles.png")
    print(f"results written to {out.resolve()}")
    return report


if __name__ == "__main__":
    main()
