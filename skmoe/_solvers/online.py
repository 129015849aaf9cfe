"""Online EM (``partial_fit``): a batch warm-up on the first chunks, then
stepwise EM on running statistics, with online merge-and-split moves."""

import copy

import numpy as np
import scipy.sparse as sp
from sklearn.utils import check_random_state

from .._backend import to_numpy
from .._em import posteriors, split_worst_expert
from .._math import log_softmax_rows
from .._online import OnlineGate, removal_costs, significantly_better, warm_up_rows
from .._rows import distinct_fit_rows
from .em import EM
from .grow import Growth
from .init import new_start, warm_start

# EM rounds on each chunk in partial_fit: each refines the chunk's E-step
# under the parameters the previous one gave. Rounds until the chunk's
# log-likelihood settled did not bring the benchmark closer to the batch fit
# (benchmarks/online.py); a move's trial, which starts from a split, runs so.
_ONLINE_STEPS_PER_CHUNK = 3


class OnlineEM:
    """Online EM of one plan (see :mod:`skmoe._plan`) under ``likelihood``;
    its progress between chunks is an :class:`~skmoe._online.OnlineState`."""

    def __init__(self, plan, likelihood, printer):
        self.plan = plan
        self.likelihood = likelihood
        self.printer = printer

    def warm_up(self, state, X, y, sample_weight):
        """Keep the chunk and fit batch EM on all rows kept; once they are
        enough for the fitted mixture's parameters, start the running
        statistics from that fit and let the rows go.

        Stepwise EM only refines: its statistics, once settled, hold each
        expert on the regime it started on. On one chunk k-means and EM
        cannot place many experts (800 rows for 8 experts of 17
        coefficients left some regimes shared), so the start is a batch fit
        on enough rows, with the merge-and-split moves and restarts of
        ``fit``. EM runs from the last call's fit and from k-means on the
        rows kept, and the fit of higher objective is kept: EM from k-means
        alone falls into a worse optimum on some sets of rows than on a
        smaller set. A model left by ``fit`` is only continued. With
        ``n_experts="auto"`` each warm-up fit grows from one expert (see
        :mod:`skmoe._solvers.grow`). Returns the gate, experts, likelihood
        parameters, and the standardised rows kept with their weights."""
        state.rows = [*state.rows, (X, y, sample_weight)]
        X = (sp.vstack if sp.issparse(X) else np.concatenate)([rows[0] for rows in state.rows])
        y, sample_weight = (np.concatenate([rows[i] for rows in state.rows]) for i in (1, 2))
        n_rows = int(np.count_nonzero(sample_weight))  # BIC's n, as fit counts it
        X, y, sample_weight, _ = distinct_fit_rows(X, y, sample_weight, None)  # as fit's
        if self.plan.grow:
            run, Z = self._grown(X, y, sample_weight, n_rows)
        else:
            run, Z = self._batch_fit(state, X, y, sample_weight)
        gate, experts, params = run.gate, run.experts, run.params
        state.start = (gate, experts, params)
        n_parameters = gate.n_parameters() + self.plan.n_expert_parameters(
            self.likelihood, run.resp.shape[1], X.shape[1]
        )
        if X.shape[0] >= warm_up_rows(n_parameters):
            state.rows = state.start = None
            state.experts, state.gate = self.likelihood.online_statistics(), OnlineGate()
            mixture = (gate, experts, state.experts, state.gate)
            params = self._rounds(mixture, X, Z, y, sample_weight, params, rounds=1)
            state.iterate, gate = gate, state.gate.averaged(gate)
        return gate, experts, params, Z, sample_weight

    def _batch_fit(self, state, X, y, sample_weight):
        """Batch EM on the rows kept, from the last fit and from k-means; the
        fit of higher objective, and its standardised rows."""
        em = EM(self.plan, self.likelihood, self.printer)  # the chunks' weights, whatever fit had
        best = None
        for start in (state.start, "kmeans"):
            if start is None or (start == "kmeans" and state.fitted):
                continue
            rng = check_random_state(self.plan.random_state)  # each EM as fit's on these rows
            if start == "kmeans":
                gate, experts, Z, resp = new_start(
                    self.plan, self.likelihood, X, sample_weight, rng
                )
            else:
                gate, experts, Z, resp = warm_start(self.likelihood, start, X, y)
            gate.set_params(**self.plan.gate_options())
            self.printer.init_start(0)
            run = em.fit(gate, experts, X, Z, y, sample_weight, resp, rng)
            if best is None or run.lower_bound > best[0].lower_bound:
                best = run, Z
        return best

    def _grown(self, X, y, sample_weight, n_rows):
        """The mixture grown on the rows kept (``n_rows`` of positive weight
        before equal rows were merged), and their standardised rows."""
        rng = check_random_state(self.plan.random_state)
        growth = Growth(self.plan, self.likelihood, self._em, n_rows=n_rows)
        run, _, Z, _ = growth.fit(X, y, sample_weight, rng)
        return run, Z

    def _em(self, plan, moves=True, design=None):
        return EM(plan, self.likelihood, self.printer, moves=moves, design=design)

    def step(self, state, experts, params, X, y, sample_weight):
        """Stepwise EM on one chunk from the fitted ``experts`` and ``params``:
        keep the trial of the last chunk's move if it fits this chunk, unseen
        by both, significantly better; refine the chunk's E-step
        ``_ONLINE_STEPS_PER_CHUNK`` times; try a move on it. Returns the gate
        averaged over its iterates (see
        :meth:`~skmoe._online.OnlineGate.averaged`), the experts, the
        likelihood's parameters and the standardised chunk."""
        gate, experts = copy.deepcopy((state.iterate, experts))
        Z = gate.standardize(X)
        if state.trial is not None:
            trial = state.trial
            new = self._row_log_lik(trial[0], trial[1], trial[4], X, Z, y)
            old = self._row_log_lik(gate, experts, params, X, Z, y)
            if significantly_better(new, old, sample_weight):
                gate, experts, state.experts, state.gate, params = copy.deepcopy(trial)
        state.experts, state.gate = copy.deepcopy((state.experts, state.gate))
        mixture = (gate, experts, state.experts, state.gate)
        params = self._rounds(mixture, X, Z, y, sample_weight, params)
        state.trial = self._move(state, gate, experts, X, Z, y, sample_weight, params)
        state.iterate = gate
        return state.gate.averaged(gate), experts, params, Z

    def _rounds(self, mixture, X, Z, y, sample_weight, params, rounds=None, **move):
        """E-steps of one chunk, each followed by the M-step from the running
        statistics; the first adds the chunk, the others replace its
        contribution. ``mixture`` is the gate, the experts and their
        statistics, all refitted in place; returns the likelihood's
        parameters. A move gives ``resp``, its start (no first E-step), and
        ``restart``, the experts whose past is dropped; all its rounds
        replace the chunk's contribution, made already."""
        gate, experts, stats, gate_stats = mixture
        likelihood = self.likelihood
        resp, restart = move.get("resp"), move.get("restart", ())
        # a move's rounds run until the chunk's log-likelihood settles, as
        # fit's EM after a move: a split left after a few rounds is half made
        converge = bool(restart)
        previous, total = -np.inf, float(sample_weight.sum())
        for repeat in range(self.plan.max_iter if converge else rounds or _ONLINE_STEPS_PER_CHUNK):
            gate_resp = resp
            if repeat or resp is None:
                log_lik = likelihood.experts_log_lik(experts, X, y, params)
                resp, gate_resp, row_log_lik = posteriors(gate, Z, log_lik)
                current = float(sample_weight @ row_log_lik) / total
                if converge and abs(current - previous) < self.plan.tol:
                    break
                previous = current
            again = repeat > 0 or bool(restart)
            stats.update(experts, X, y, resp * sample_weight[:, None], again=again, restart=restart)
            params = likelihood.online_params(experts, stats)
            targets = gate_resp * sample_weight[:, None]
            gate_stats.update(gate, Z, targets, again=again, restart=restart)
        return params

    def _row_log_lik(self, gate, experts, params, X, Z, y):
        """Each row's log-likelihood under the mixture."""
        log_lik = self.likelihood.experts_log_lik(experts, X, y, params)
        return to_numpy(posteriors(gate, Z, log_lik)[2])

    def _move(self, state, gate, experts, X, Z, y, sample_weight, params):
        """The mixture after an online merge-and-split move on this chunk, for
        the next chunk to judge, or None.

        Batch EM frees an expert that duplicates another, or restarts one
        that has lost its rows, and gives it half of the rows of the expert
        that fits its own rows worst (see :meth:`~skmoe._solvers.em.EM.fit`);
        it keeps the move if the objective rises. Online, the expert freed is
        the one whose removal costs this chunk's rows the least likelihood
        (an idle one, or either of two on one regime), the split is that of
        ``fit``'s moves on this chunk's rows, both experts forget their past
        statistics, and the trial runs the chunk's rounds again from there.
        Its judge is the next chunk, which neither mixture has seen."""
        log_lik = self.likelihood.experts_log_lik(experts, X, y, params)
        resp = to_numpy(posteriors(gate, Z, log_lik)[0])
        n_experts = resp.shape[1]
        if n_experts < 2:
            return None
        log_gate = log_softmax_rows(to_numpy(gate.logits_standardized(Z)).astype(np.float64))
        costs = removal_costs(log_gate, to_numpy(log_lik).astype(np.float64), sample_weight)
        free = int(np.argmin(costs))
        merged = resp.copy()
        merged[:, free] = 0.0  # its rows go to the trial's next E-step
        others = np.delete(np.arange(n_experts), free)
        start = split_worst_expert(merged, free, Z, log_lik, sample_weight, state.rng, others)
        if start is None:
            return None
        split = int(merged[start[:, free] > 0][0].argmax())  # the expert split
        trial = copy.deepcopy((gate, experts, state.experts, state.gate))
        params = self._rounds(
            trial, X, Z, y, sample_weight, params, resp=start, restart=(free, split)
        )
        return (*trial, params)
