"""Held-out R^2 against seconds: skmoe's EM against the same mixture written
in PyTorch and trained by Adam, on one GPU.

Regime data as in ``gpu_fit.py`` (n x 32 float32 rows, 8 regions of space,
each its own linear law, noise sd 0.1), scored on 1,000,000 further rows
against the noise ceiling ``1 - 0.01 / var(y)``.

- skmoe: ``MixtureOfExpertsRegressor(n_experts=8, device="cuda")`` fitted
  from scratch with ``max_iter`` of 1, 2, 4, 8 and 16 EM iterations and with
  its default; each row is one whole fit's wall time, the k-means start
  included.
- PyTorch, the way its users write this model: a softmax gate and 8 linear
  experts (``nn.Linear`` on standardised inputs) with one log-variance each,
  the mixture's negative log-likelihood, Adam (learning rate 0.01) on
  shuffled mini-batches of 8192 rows; scored every half second of training
  (the scoring not counted), up to ``--seconds`` of training.

    PYTHONPATH=. python3 benchmarks/gpu_time_to_accuracy.py [--n 10000000] [--seconds 20]

Writes gpu_time_to_accuracy.json and gpu_time_to_accuracy.md under --out.
"""

import argparse
import time
import warnings
from pathlib import Path

import cupy as cp
from _report import write_report  # beside this script
from gpu_em import LOG_2PI, r2, regime_data
from sklearn.exceptions import ConvergenceWarning

from skmoe import MixtureOfExpertsRegressor

N_EXPERTS = 8
NOISE_VARIANCE = 0.01  # regime_data's noise: sd 0.1
TEST_ROWS = 1_000_000
BATCH_ROWS = 8192
LEARNING_RATE = 0.01


def skmoe_curve(X, y, X_test, y_test, seed):
    rows = []
    for max_iter in (1, 2, 4, 8, 16, None):
        options = {} if max_iter is None else {"max_iter": max_iter}
        model = MixtureOfExpertsRegressor(
            n_experts=N_EXPERTS, random_state=seed, device="cuda", **options
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # the short fits stop early
            cp.cuda.Device().synchronize()
            start = time.perf_counter()
            model.fit(X, y)
            cp.cuda.Device().synchronize()
            seconds = time.perf_counter() - start
        setting = f"max_iter={max_iter}" if max_iter else f"default ({model.n_iter_} iterations)"
        rows.append(("skmoe EM", setting, seconds, r2(model.predict(X_test), y_test)))
        print(rows[-1], flush=True)
    return rows


def torch_curve(X, y, X_test, y_test, seed, seconds):
    import torch

    torch.manual_seed(seed)
    X, y, X_test = (torch.as_tensor(a, device="cuda") for a in (X, y, X_test))
    mean, scale = X.mean(dim=0), X.std(dim=0)
    d = X.shape[1]
    gate, experts = torch.nn.Linear(d, N_EXPERTS).cuda(), torch.nn.Linear(d, N_EXPERTS).cuda()
    log_variance = torch.nn.Parameter(torch.zeros(N_EXPERTS, device="cuda"))
    parameters = [*gate.parameters(), *experts.parameters(), log_variance]
    optimizer = torch.optim.Adam(parameters, lr=LEARNING_RATE)

    def step(rows):
        z, target = (X[rows] - mean) / scale, y[rows]
        residual = target[:, None] - experts(z)
        log_lik = -0.5 * (LOG_2PI + log_variance + residual**2 / log_variance.exp())
        loss = -torch.logsumexp(torch.log_softmax(gate(z), dim=1) + log_lik, dim=1).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    @torch.no_grad()
    def score():
        z = (X_test - mean) / scale
        prediction = (torch.softmax(gate(z), dim=1) * experts(z)).sum(dim=1)
        return r2(cp.asarray(prediction), y_test)

    step(torch.arange(BATCH_ROWS, device="cuda"))  # CUDA and cuBLAS set up outside the clock
    rows, trained, epoch, checkpoint = [], 0.0, 0, 0.5
    while trained < seconds:
        torch.cuda.synchronize()
        start = time.perf_counter()
        order = torch.randperm(len(X), device="cuda")
        for first in range(0, len(X), BATCH_ROWS):
            step(order[first : first + BATCH_ROWS])
            if first % (64 * BATCH_ROWS) == 0:  # look at the clock now and then
                torch.cuda.synchronize()
                if trained + time.perf_counter() - start >= checkpoint:
                    break
        torch.cuda.synchronize()
        trained += time.perf_counter() - start
        epoch += min(first + BATCH_ROWS, len(X)) / len(X)
        rows.append(("PyTorch Adam", f"{epoch:.2f} epochs", trained, score()))
        print(rows[-1], flush=True)
        checkpoint += 0.5
    return rows


def first_reaching(rows, method, level):
    seconds = [s for m, _, s, score in rows if m == method and score >= level]
    return f"{min(seconds):.1f} s" if seconds else "not reached"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000_000)
    parser.add_argument("--d", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    # compile the kernels first, so that no fit's time includes it
    X, y = regime_data(200_000, args.d, N_EXPERTS, cp.float32, seed=args.seed + 1)
    MixtureOfExpertsRegressor(n_experts=N_EXPERTS, device="cuda").fit(X, y)
    X, y = regime_data(args.n + TEST_ROWS, args.d, N_EXPERTS, cp.float32, seed=args.seed)
    X, X_test, y, y_test = X[: args.n], X[args.n :], y[: args.n], y[args.n :]
    ceiling = 1 - NOISE_VARIANCE / float(y_test.var())
    rows = skmoe_curve(X, y, X_test, y_test, args.seed)
    skipped = ""
    try:
        rows += torch_curve(X, y, X_test, y_test, args.seed, args.seconds)
    except ImportError:
        skipped = " PyTorch is not installed: its rows are skipped."
    device = cp.cuda.runtime.getDeviceProperties(0)["name"].decode()
    lines = [
        "# Time to accuracy on the GPU",
        "",
        f"{device}; regime data, {args.n:,} x {args.d} float32 rows, {N_EXPERTS} regimes; "
        f"R^2 on {TEST_ROWS:,} further rows, noise ceiling {ceiling:.4f}. skmoe: whole fits "
        f"with the EM iterations shown; PyTorch: the same mixture, Adam (lr {LEARNING_RATE}) "
        f"on mini-batches of {BATCH_ROWS} rows, scored as it trains (seconds of training)."
        f"{skipped} Generated by `PYTHONPATH=. python3 benchmarks/gpu_time_to_accuracy.py`.",
        "",
    ]
    for level in (ceiling - 0.01, ceiling - 0.002):
        lines.append(
            f"- R^2 >= {level:.4f}: skmoe {first_reaching(rows, 'skmoe EM', level)}, "
            f"PyTorch {first_reaching(rows, 'PyTorch Adam', level)}."
        )
    lines += ["", "| method | setting | seconds | R^2 |", "|---|---|---|---|"]
    lines += [f"| {m} | {setting} | {s:.2f} | {score:.4f} |" for m, setting, s, score in rows]
    result = dict(
        device=device,
        n=args.n,
        d=args.d,
        ceiling=ceiling,
        rows=[dict(method=m, setting=st, seconds=s, r2=sc) for m, st, s, sc in rows],
    )
    write_report(args.out, "gpu_time_to_accuracy", result, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
