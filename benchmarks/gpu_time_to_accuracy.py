"""Held-out R^2 against seconds: skmoe's EM against the same mixture written
in PyTorch and trained by Adam, on one GPU.

Regime data as in ``gpu_fit.py`` (n x 32 float32 rows, 8 regions of space,
each its own linear law, noise sd 0.1), scored on 1,000,000 further rows
against the noise ceiling ``1 - 0.01 / var(y)``.

- skmoe: one fit of ``MixtureOfExpertsRegressor(n_experts=8,
  device="cuda")``, scored after every EM iteration (those of the
  merge-and-split trials too, by EM run); the seconds are the fit's wall
  time so far, the k-means start included, the scoring left out.
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
from pathlib import Path

import cupy as cp
from _report import write_report  # beside this script
from gpu_em import LOG_2PI, TEST_ROWS, held_out_regime_data, r2, regime_data

from skmoe import MixtureOfExpertsRegressor
from skmoe._solvers.em import EM

N_EXPERTS = 8
BATCH_ROWS = 8192
LEARNING_RATE = 0.01


def em_curve(model, X, y, score):
    """One fit of ``model``, scored by ``score(gate, experts)`` after every
    EM iteration (the merge-and-split trials' too, labelled by their EM
    run); the scoring's time is not counted. Returns the rows, the last for
    the fitted model's gate and experts, and the fitted model."""
    rows, runs, clock = [], [], {"start": 0.0, "paused": 0.0}
    em_run, em_step = EM.run, EM._step

    def counted_run(self, *args, **kwargs):
        runs.append(0)
        return em_run(self, *args, **kwargs)

    def scored_step(self, gate, experts, *args):
        out = em_step(self, gate, experts, *args)
        cp.cuda.Device().synchronize()
        paused = time.perf_counter()
        runs[-1] += 1
        setting = f"run {len(runs)}, iteration {runs[-1]}"
        seconds = paused - clock["start"] - clock["paused"]
        rows.append(("skmoe EM", setting, seconds, score(gate, experts)))
        clock["paused"] += time.perf_counter() - paused
        return out

    EM.run, EM._step = counted_run, scored_step
    try:
        cp.cuda.Device().synchronize()
        clock["start"] = time.perf_counter()
        model.fit(X, y)
        cp.cuda.Device().synchronize()
        seconds = time.perf_counter() - clock["start"] - clock["paused"]
    finally:
        EM.run, EM._step = em_run, em_step
    setting = f"fitted ({model.n_iter_} iterations, {model.n_merges_} moves kept)"
    rows.append(("skmoe EM", setting, seconds, score(model.gate_, model._experts)))
    return rows, model


def skmoe_curve(X, y, X_test, y_test, seed):
    """One fit with default settings, scored after every EM iteration."""

    def score(gate, experts):
        log_gate = gate.log_proba_standardized(gate.standardize(X_test))
        return r2((cp.exp(log_gate) * experts.predict(X_test)).sum(axis=1), y_test)

    model = MixtureOfExpertsRegressor(n_experts=N_EXPERTS, random_state=seed, device="cuda")
    return em_curve(model, X, y, score)[0]


def adam_curve(step, score, n_rows, seconds):
    """Adam's training, timed: ``step(rows)`` on shuffled mini-batches of
    ``BATCH_ROWS`` rows, scored by ``score()`` every half second of training
    (the scoring not counted), up to ``seconds``."""
    import torch

    step(torch.arange(BATCH_ROWS, device="cuda"))  # CUDA and cuBLAS set up outside the clock
    rows, trained, epoch, checkpoint = [], 0.0, 0, 0.5
    while trained < seconds:
        torch.cuda.synchronize()
        start = time.perf_counter()
        order = torch.randperm(n_rows, device="cuda")
        for first in range(0, n_rows, BATCH_ROWS):
            step(order[first : first + BATCH_ROWS])
            if first % (64 * BATCH_ROWS) == 0:  # look at the clock now and then
                torch.cuda.synchronize()
                if trained + time.perf_counter() - start >= checkpoint:
                    break
        torch.cuda.synchronize()
        trained += time.perf_counter() - start
        epoch += min(first + BATCH_ROWS, n_rows) / n_rows
        rows.append(("PyTorch Adam", f"{epoch:.2f} epochs", trained, score()))
        print(rows[-1], flush=True)
        checkpoint += 0.5
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

    return adam_curve(step, score, len(X), seconds)


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
    X, y, X_test, y_test, ceiling = held_out_regime_data(args.n, args.d, N_EXPERTS, args.seed)
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
        f"R^2 on {TEST_ROWS:,} further rows, noise ceiling {ceiling:.4f}. skmoe: one fit, "
        f"scored after each EM iteration; PyTorch: the same mixture, Adam (lr {LEARNING_RATE}) "
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
