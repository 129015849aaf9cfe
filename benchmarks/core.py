"""Quality and fit time of the core estimators against scikit-learn's ensembles.

Regression: the piecewise-linear regime data (n=20000, d=8, 4 regimes), held-out
R^2 and fit time of the default MixtureOfExpertsRegressor next to Ridge,
HistGradientBoosting and stacking, timed side by side (median of --repeats,
models interleaved so machine noise hits all alike); then the spread of the
mixture's R^2 over seeds and data draws, next to each draw's ceiling.
Classification: 5-fold CV accuracy of the default MixtureOfExpertsClassifier
against LogisticRegression.

    python benchmarks/core.py [--repeats 3] [--out benchmarks/results]

Writes core.json and core.md under --out.
"""

import argparse
import platform
import time
import warnings
from pathlib import Path

import numpy as np
import sklearn
from _report import write_report  # beside this script
from sklearn.datasets import load_breast_cancer, load_digits, load_wine
from sklearn.ensemble import HistGradientBoostingRegressor, StackingRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge, RidgeCV
from sklearn.metrics import r2_score
from sklearn.model_selection import StratifiedKFold, cross_val_score, train_test_split
from sklearn.neighbors import KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeRegressor

import skmoe
from skmoe import MixtureOfExpertsClassifier, MixtureOfExpertsRegressor
from skmoe.datasets import make_regime_regression


def regression_models():
    return {
        "MixtureOfExpertsRegressor(n_experts=4)": MixtureOfExpertsRegressor(
            n_experts=4, random_state=0
        ),
        "Ridge": Ridge(),
        "HistGradientBoostingRegressor": HistGradientBoostingRegressor(random_state=0),
        "StackingRegressor(ridge, tree, knn)": StackingRegressor(
            [
                ("ridge", Ridge()),
                ("tree", DecisionTreeRegressor(max_depth=8, random_state=0)),
                ("knn", KNeighborsRegressor(n_neighbors=10)),
            ],
            final_estimator=RidgeCV(),
        ),
    }


def time_fit(model, X, y):
    start = time.perf_counter()
    model.fit(X, y)
    return time.perf_counter() - start


def regression_table(repeats):
    X, y = make_regime_regression(n_samples=20000, n_features=8, n_regimes=4, random_state=0)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)
    models = regression_models()
    times = {name: [] for name in models}
    for _ in range(repeats):
        for name, model in models.items():
            times[name].append(time_fit(model, X_train, y_train))
    rows = []
    for name, model in models.items():
        rows.append(
            {
                "model": name,
                "r2": model.score(X_test, y_test),
                "fit_s": float(np.median(times[name])),
            }
        )
    hgb = next(r for r in rows if r["model"].startswith("HistGradient"))
    for row in rows:
        row["fit_vs_hgb"] = row["fit_s"] / hgb["fit_s"]
    return rows


def oracle_r2(X_train, y_train, r_train, X_test, y_test, r_test):
    """R^2 of one least-squares fit per true regime: the ceiling for any model."""
    pred = np.empty_like(y_test)
    for regime in np.unique(r_train):
        fit = LinearRegression().fit(X_train[r_train == regime], y_train[r_train == regime])
        if np.any(r_test == regime):
            pred[r_test == regime] = fit.predict(X_test[r_test == regime])
    return r2_score(y_test, pred)


def seed_spread(n_data=5, n_seeds=8):
    """Held-out R^2 of the default mixture over data draws and seeds."""
    out = []
    for data_seed in range(n_data):
        X, y, regimes = make_regime_regression(
            n_samples=20000, random_state=data_seed, return_regimes=True
        )
        X_train, X_test, y_train, y_test, r_train, r_test = train_test_split(
            X, y, regimes, test_size=0.25, random_state=0
        )
        scores = [
            MixtureOfExpertsRegressor(n_experts=4, random_state=seed)
            .fit(X_train, y_train)
            .score(X_test, y_test)
            for seed in range(n_seeds)
        ]
        oracle = oracle_r2(X_train, y_train, r_train, X_test, y_test, r_test)
        out.append({"data_seed": data_seed, "r2": scores, "oracle_r2": oracle})
    return out


def classification_table():
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    rows = []
    for loader in (load_breast_cancer, load_wine, load_digits):
        X, y = loader(return_X_y=True)
        row = {"dataset": loader.__name__.removeprefix("load_")}
        for name, model in (
            ("logistic", LogisticRegression(max_iter=1000)),
            ("mixture", MixtureOfExpertsClassifier(random_state=0)),
        ):
            scores = cross_val_score(make_pipeline(StandardScaler(), model), X, y, cv=cv)
            row[name] = {"mean": scores.mean(), "std": scores.std()}
        row["within_one_std"] = bool(
            row["mixture"]["mean"] >= row["logistic"]["mean"] - row["logistic"]["std"]
        )
        rows.append(row)
    return rows


def to_markdown(result):
    lines = [
        "# Core estimators",
        "",
        f"skmoe {result['versions']['skmoe']}, scikit-learn {result['versions']['sklearn']}, "
        f"{result['machine']}. Generated by `python benchmarks/core.py`.",
        "",
        "## Piecewise-linear regimes (n=20000, d=8, 4 regimes, 25% held out)",
        "",
        "| model | held-out R^2 | fit time (s, median) | fit time / HGB |",
        "|---|---|---|---|",
    ]
    for row in result["regression"]:
        lines.append(
            f"| {row['model']} | {row['r2']:.4f} | {row['fit_s']:.3f} | {row['fit_vs_hgb']:.2f} |"
        )
    lines += [
        "",
        "## Mixture R^2 over data draws and seeds (default regressor, 4 experts)",
        "",
        "The oracle fits one least-squares model per true regime: the ceiling.",
        "",
        "| data seed | min | median | max | oracle |",
        "|---|---|---|---|---|",
    ]
    for row in result["seed_spread"]:
        r2 = np.asarray(row["r2"])
        lines.append(
            f"| {row['data_seed']} | {r2.min():.4f} | {np.median(r2):.4f} | {r2.max():.4f} "
            f"| {row['oracle_r2']:.4f} |"
        )
    lines += [
        "",
        "## Classification: 5-fold CV accuracy (StandardScaler, then the model)",
        "",
        "| data set | LogisticRegression | MixtureOfExpertsClassifier | within one std |",
        "|---|---|---|---|",
    ]
    for row in result["classification"]:
        lg, mx = row["logistic"], row["mixture"]
        lines.append(
            f"| {row['dataset']} | {lg['mean']:.4f} +- {lg['std']:.4f} | "
            f"{mx['mean']:.4f} +- {mx['std']:.4f} | {'yes' if row['within_one_std'] else 'no'} |"
        )
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # ConvergenceWarnings of the peers' defaults
    result = {
        "versions": {"skmoe": skmoe.__version__, "sklearn": sklearn.__version__},
        "machine": f"{platform.machine()}, {platform.python_implementation()} "
        f"{platform.python_version()}",
        "regression": regression_table(args.repeats),
        "seed_spread": seed_spread(),
        "classification": classification_table(),
    }
    markdown = to_markdown(result)
    write_report(args.out, "core", result, markdown)


if __name__ == "__main__":
    main()
