"""The classifier on the GPU: whole-fit time and held-out accuracy, against
the CPU fit on a subsample and against the same mixture written in PyTorch
and trained by Adam.

Regime classes (``_regime_classes.py``): 10,000,000 x 32 float32 rows in 8
regions of space, each with its own multinomial logistic law over C classes,
drawn on the host; scored on 1,000,000 further rows, beside the accuracy of
the true laws (the Bayes classifier's, the ceiling).

- skmoe GPU: one fit of ``MixtureOfExpertsClassifier(n_experts=8,
  device="cuda")``, timed whole (the k-means start included) and scored
  after every EM iteration, as ``gpu_time_to_accuracy.py`` scores the
  regressor (the scoring's time left out).
- skmoe CPU: the same estimator on the first 1,000,000 rows, fitted on the
  host by ``classifier_subsample.py``, whose JSON (``--cpu-results``) this
  script reads where it holds the same rows; beside it, the GPU's fit of
  those rows.
- PyTorch, the way its users write this model: a softmax gate and 8
  softmax experts (``nn.Linear`` on standardised inputs), the mixture's
  negative log-likelihood, Adam (learning rate 0.01) on shuffled
  mini-batches of 8192 rows, scored every half second of training up to
  ``--seconds``.

    PYTHONPATH=. python3 benchmarks/gpu_classifier.py [--classes 3 10]

Writes gpu_classifier.json and gpu_classifier.md under --out.
"""

import argparse
import json
import time
from pathlib import Path

import cupy as cp
from _regime_classes import FIT_ROWS, N_REGIMES, TEST_ROWS, D, fingerprint, split
from _report import write_report  # beside this script
from gpu_time_to_accuracy import BATCH_ROWS, LEARNING_RATE, adam_curve, em_curve, first_reaching

from skmoe import MixtureOfExpertsClassifier

N_EXPERTS = N_REGIMES


def accuracy(labels, y):
    return float((cp.asarray(labels) == y).mean())


def skmoe_curve(X, y, X_test, y_test, seed):
    """One GPU fit, scored after every EM iteration (see
    :func:`gpu_time_to_accuracy.em_curve`)."""

    def score(gate, experts):
        gate_proba = cp.exp(gate.log_proba_standardized(gate.standardize(X_test)))
        proba = cp.einsum("nk,nkc->nc", gate_proba, experts.predict_proba(X_test))
        return accuracy(proba.argmax(axis=1), y_test)

    model = MixtureOfExpertsClassifier(n_experts=N_EXPERTS, random_state=seed, device="cuda")
    return em_curve(model, X, y, score)[0]


def timed_fit(X, y, seed, device):
    """A fit of the benchmark's estimator and its wall time."""
    model = MixtureOfExpertsClassifier(n_experts=N_EXPERTS, random_state=seed, device=device)
    cp.cuda.Device().synchronize()
    start = time.perf_counter()
    model.fit(X, y)
    cp.cuda.Device().synchronize()
    return model, time.perf_counter() - start


def torch_curve(X, y, X_test, y_test, n_classes, seed, seconds):
    import torch

    torch.manual_seed(seed)
    X, y, X_test = (torch.as_tensor(a, device="cuda") for a in (X, y, X_test))
    y = y.long()
    mean, scale = X.mean(dim=0), X.std(dim=0)
    d = X.shape[1]
    gate = torch.nn.Linear(d, N_EXPERTS).cuda()
    experts = torch.nn.Linear(d, N_EXPERTS * n_classes).cuda()
    optimizer = torch.optim.Adam([*gate.parameters(), *experts.parameters()], lr=LEARNING_RATE)

    def log_proba(z):
        return torch.log_softmax(experts(z).view(len(z), N_EXPERTS, n_classes), dim=2)

    def step(rows):
        z, target = (X[rows] - mean) / scale, y[rows]
        index = target[:, None, None].expand(-1, N_EXPERTS, 1)
        log_lik = log_proba(z).gather(2, index)[..., 0]
        loss = -torch.logsumexp(torch.log_softmax(gate(z), dim=1) + log_lik, dim=1).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    @torch.no_grad()
    def score():
        z = (X_test - mean) / scale
        proba = torch.einsum("nk,nkc->nc", torch.softmax(gate(z), dim=1), log_proba(z).exp())
        return accuracy(cp.asarray(proba.argmax(dim=1)), y_test)

    return adam_curve(step, score, len(X), seconds)


def cpu_fit(path, n_classes, seed, data):
    """The CPU fit of ``classifier_subsample.py`` for these classes, seed
    and rows (``data``, their fingerprint), or None."""
    if not path.exists():
        return None
    fits = json.loads(path.read_text())["fits"]
    same = (f for f in fits if (f["n_classes"], f["seed"], f["data"]) == (n_classes, seed, data))
    return next(same, None)


def classes_section(args, n_classes):
    """The fits and the curves for ``n_classes`` classes: markdown lines and
    a JSON record."""
    X, y, X_test, y_test, ceiling = split(n_classes, args.seed)
    data = fingerprint(X_test, y_test)
    X, y, X_test, y_test = (cp.asarray(a) for a in (X, y, X_test, y_test))
    # compile the kernels first, so that no fit's time includes it: on more
    # than 2 ** 21 rows, where the Newton steps' samples of rows set in
    timed_fit(X[:3_000_000], y[:3_000_000], args.seed + 1, "cuda")
    gpu, gpu_seconds = timed_fit(X, y, args.seed, "cuda")
    gpu_accuracy = accuracy(gpu.predict(X_test), y_test)
    record = dict(
        n_classes=n_classes,
        bayes_accuracy=ceiling,
        data=data,
        gpu=dict(seconds=gpu_seconds, accuracy=gpu_accuracy, n_iter=gpu.n_iter_),
    )
    del gpu
    lines = [
        f"## {n_classes} classes",
        "",
        f"Bayes accuracy {ceiling:.4f}. GPU fit of {len(X):,} rows: {gpu_seconds:.2f} s, "
        f"held-out accuracy {gpu_accuracy:.4f} ({record['gpu']['n_iter']} iterations).",
    ]
    cpu = cpu_fit(args.cpu_results, n_classes, args.seed, data)
    if cpu is None:
        lines[-1] += f" No CPU fit of these rows in {args.cpu_results.name}."
    else:
        # the same rows on the GPU: where the two part, it is the device
        subsample = cpu["rows"]
        same, same_seconds = timed_fit(X[:subsample], y[:subsample], args.seed, "cuda")
        same_accuracy = accuracy(same.predict(X_test), y_test)
        record["cpu"] = cpu
        record["gpu_same_rows"] = dict(
            rows=subsample, seconds=same_seconds, accuracy=same_accuracy, n_iter=same.n_iter_
        )
        lines[-1] += (
            f" CPU fit of the first {subsample:,} rows (`classifier_subsample.py`): "
            f"{cpu['seconds']:.1f} s, accuracy {cpu['accuracy']:.4f} "
            f"({cpu['n_iter']} iterations; GPU - CPU: {gpu_accuracy - cpu['accuracy']:+.4f}). "
            f"GPU fit of the same {subsample:,} rows: {same_seconds:.2f} s, accuracy "
            f"{same_accuracy:.4f} ({same.n_iter_} iterations; against the CPU's: "
            f"{same_accuracy - cpu['accuracy']:+.4f})."
        )
    rows = skmoe_curve(X, y, X_test, y_test, args.seed)
    skipped = ""
    try:
        rows += torch_curve(X, y, X_test, y_test, n_classes, args.seed, args.seconds)
    except ImportError:
        skipped = " PyTorch is not installed: its rows are skipped."
    lines += ["", "Time to accuracy (the skmoe fit scored as it runs, so slower than above)."]
    lines[-1] += skipped
    lines.append("")
    for level in (ceiling - 0.01, ceiling - 0.002):
        lines.append(
            f"- accuracy >= {level:.4f}: skmoe {first_reaching(rows, 'skmoe EM', level)}, "
            f"PyTorch {first_reaching(rows, 'PyTorch Adam', level)}."
        )
    lines += ["", "| method | setting | seconds | accuracy |", "|---|---|---|---|"]
    lines += [f"| {m} | {setting} | {s:.2f} | {score:.4f} |" for m, setting, s, score in rows]
    record["rows"] = [dict(method=m, setting=st, seconds=s, accuracy=sc) for m, st, s, sc in rows]
    return lines + [""], record


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--classes", type=int, nargs="+", default=[3, 10])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument(
        "--cpu-results",
        type=Path,
        default=Path(__file__).parent / "results" / "classifier_subsample.json",
    )
    args = parser.parse_args()
    device = cp.cuda.runtime.getDeviceProperties(0)["name"].decode()
    lines = [
        "# The classifier on the GPU",
        "",
        f"{device}; regime classes, {FIT_ROWS:,} x {D} float32 rows, {N_EXPERTS} regimes "
        f"each with its own logistic law; accuracy on {TEST_ROWS:,} further rows. "
        f"`MixtureOfExpertsClassifier(n_experts={N_EXPERTS})`, on the GPU and on the CPU "
        f"(a subsample); PyTorch: the same mixture, Adam (lr {LEARNING_RATE}) on mini-batches "
        f"of {BATCH_ROWS} rows, scored as it trains (seconds of training). Generated by "
        f"`PYTHONPATH=. python3 benchmarks/gpu_classifier.py --seconds {args.seconds:g} "
        f"--seed {args.seed}`.",
        "",
    ]
    result = dict(device=device, n=FIT_ROWS, d=D, classes=[])
    for n_classes in args.classes:  # each written as it ends
        section, record = classes_section(args, n_classes)
        lines += section
        result["classes"].append(record)
        write_report(args.out, "gpu_classifier", result, "\n".join(lines))


if __name__ == "__main__":
    main()
