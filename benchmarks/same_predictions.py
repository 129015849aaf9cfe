"""Fits of fixed seeds across the estimators' options, saved or checked: a
change meant to leave behaviour as it was (a refactor) must give the same
predictions, objectives and iteration counts, to 1e-12 relative in float64.

    python benchmarks/same_predictions.py --save before.npz   # on the old code
    python benchmarks/same_predictions.py --check before.npz  # on the new code

``--device cuda`` fits the configurations that run on the GPU instead.
"""

import argparse
import warnings

import numpy as np
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from skmoe import MixtureOfExpertsClassifier, MixtureOfExpertsRegressor
from skmoe.datasets import make_regime_classification, make_regime_regression

_RTOL = 1e-12

_REGRESSOR = {
    "default": {},
    "top_k": dict(n_experts=6, top_k=2),
    "balance": dict(n_experts=4, top_k=2, balance_loss="switch"),
    "hierarchy": dict(n_experts=(2, 3)),
    "one_level_tree": dict(n_experts=(3,)),
    "random_init": dict(init="random", n_init=2),
    "tree_experts": dict(estimator=DecisionTreeRegressor(max_depth=3), n_experts=3),
    "gradient": dict(solver="gradient", max_iter=15),
    "gradient_hidden": dict(solver="gradient", expert_hidden_units=4, max_iter=10),
    "gradient_noisy": dict(solver="gradient", top_k=2, gate_noise=True, max_iter=10),
    "gradient_stopping": dict(solver="gradient", early_stopping=True, max_iter=15),
    "gradient_trees": dict(
        solver="gradient", estimator=DecisionTreeRegressor(max_depth=3), max_iter=5
    ),
}
_CLASSIFIER = {
    "default": {},
    "top_k": dict(n_experts=5, top_k=2),
    "hierarchy": dict(n_experts=(2, 2)),
    "drop": dict(estimator=DecisionTreeClassifier(max_depth=2), expert_failure="drop"),
    "tree_experts": dict(estimator=DecisionTreeClassifier(max_depth=3), n_experts=3),
    "gradient": dict(solver="gradient", max_iter=10),
}
_DEVICE = {
    "dense": dict(n_experts=4),
    "top_k": dict(n_experts=8, top_k=2),
}


def _outputs(model, X, prefix):
    """The fitted model's predictions and fit record, by name."""
    out = {f"{prefix}/gate": model.gate_proba(X), f"{prefix}/n_iter": model.n_iter_}
    out[f"{prefix}/lower_bound"] = getattr(model, "lower_bound_", np.nan)
    out[f"{prefix}/lower_bounds"] = getattr(model, "lower_bounds_", np.zeros(0))
    if hasattr(model, "predict_proba"):
        out[f"{prefix}/proba"] = model.predict_proba(X)
    else:
        out[f"{prefix}/mean"], out[f"{prefix}/std"] = model.predict(X, return_std=True)
    return {k: np.asarray(v.get() if hasattr(v, "get") else v) for k, v in out.items()}


def _cpu_fits():
    X, y = make_regime_regression(n_samples=1500, n_features=4, n_regimes=3, random_state=0)
    Xc, yc = make_regime_classification(n_samples=1500, n_features=4, random_state=1)
    weight = np.random.RandomState(2).uniform(0.5, 2.0, len(y))
    out = {}
    for name, params in _REGRESSOR.items():
        model = MixtureOfExpertsRegressor(random_state=0, **params)
        out |= _outputs(model.fit(X, y), X, f"reg/{name}")
    model = MixtureOfExpertsRegressor(random_state=0).fit(X, y, sample_weight=weight)
    out |= _outputs(model, X, "reg/weighted")
    model = MixtureOfExpertsRegressor(random_state=0, warm_start=True, max_iter=5).fit(X, y)
    out |= _outputs(model.fit(X, y), X, "reg/warm_start")
    model = MixtureOfExpertsRegressor(random_state=0).fit(X.astype(np.float32), y)
    out |= _outputs(model, X.astype(np.float32), "reg/float32")
    for name, params in _CLASSIFIER.items():
        model = MixtureOfExpertsClassifier(random_state=0, **params)
        out |= _outputs(model.fit(Xc, yc), Xc, f"clf/{name}")
    for name, cls, data in (
        ("reg", MixtureOfExpertsRegressor, (X, y)),
        ("clf", MixtureOfExpertsClassifier, (Xc, yc)),
    ):
        model = cls(n_experts=3, random_state=0)
        extra = {"classes": np.unique(yc)} if name == "clf" else {}
        for chunk in np.array_split(np.arange(len(data[1])), 6):
            model.partial_fit(data[0][chunk], data[1][chunk], **extra)
        out |= _outputs(model, data[0], f"{name}/partial_fit")
    return out


def _device_fits():
    import cupy

    out = {}
    for dtype in (np.float64, np.float32):
        X, y = make_regime_regression(n_samples=20000, n_features=8, random_state=0)
        X = cupy.asarray(X, dtype=dtype)
        for name, params in _DEVICE.items():
            model = MixtureOfExpertsRegressor(random_state=0, device="cuda", **params)
            out |= _outputs(model.fit(X, y), X, f"cuda/{np.dtype(dtype).name}/{name}")
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--save", metavar="FILE")
    action.add_argument("--check", metavar="FILE")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    args = parser.parse_args()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = _device_fits() if args.device == "cuda" else _cpu_fits()
    if args.save:
        np.savez(args.save, **out)
        print(f"{len(out)} arrays saved to {args.save}")
        return
    before = np.load(args.check)
    worst = 0.0
    for name in sorted(set(before.files) | set(out)):
        if name not in before.files or name not in out:
            raise SystemExit(f"{name}: present on one side only")
        old, new = before[name], out[name]
        if old.shape != new.shape:
            raise SystemExit(f"{name}: shape {old.shape} before, {new.shape} now")
        scale = np.maximum(np.abs(old), 1.0)
        diff = float(np.max(np.abs(new - old) / scale, initial=0.0, where=np.isfinite(old)))
        worst = max(worst, diff)
        if diff > _RTOL or not np.array_equal(np.isfinite(old), np.isfinite(new)):
            raise SystemExit(f"{name}: differs by {diff:.3g} (relative), over {_RTOL}")
    print(f"{len(out)} arrays the same; largest relative difference {worst:.3g}")


if __name__ == "__main__":
    main()
