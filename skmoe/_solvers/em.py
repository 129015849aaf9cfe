"""Batch EM: iterations until the objective settles, with dead experts
restarted, failing experts dropped, SQUAREM's extrapolations and
merge-and-split moves.

The loop follows :mod:`sklearn.mixture._base`: alternate M-steps and E-steps
until the objective changes by less than ``tol``, and (built-in experts)
Aitken's estimate of the change still to come is under it too.
"""

import copy
import functools

import numpy as np

from .._acceleration import em_iterate, set_em_iterate, squarem_point
from .._backend import all_finite, get_namespace, to_numpy
from .._backend._products import column_sum
from .._design import Design
from .._em import (
    MAX_RESTARTS_PER_EXPERT,
    idle_expert,
    posteriors,
    redundant_pair,
    restart_experts,
    split_worst_expert,
)
from .._math import weighted_sum
from .._warn import warn
from ..experts._estimators import ExpertFitError
from .result import FitResult
from .stopping import Best, validation_score

# A fall of the objective by more than this, relative, is counted in
# n_objective_falls_; smaller ones are rounding.
_FALL_RTOL = 1e-9


class EM:
    """EM of one plan (see :mod:`skmoe._plan`) under ``likelihood``.

    ``unit_weights`` says that every row weighs 1, so that the (n, K) arrays
    need not be multiplied by the weights. With held-out rows ``validation``,
    ``(X, y, sample_weight)``, each run also stops once their mean
    log-likelihood has not risen by ``tol`` for ``n_iter_no_change``
    iterations, and keeps its best iteration; a move is then judged by them.
    ``moves=False`` leaves out the merge-and-split moves: a mixture that
    grows (``n_experts="auto"``) places its experts by splits of its own; an
    int is the most moves made (True: one per expert).
    ``design``, a :class:`~skmoe._design.Design` of the standardised rows,
    is shared by fits of several sizes on them (their outer products formed
    once); by default each fit makes its own.
    """

    def __init__(
        self,
        plan,
        likelihood,
        printer,
        *,
        unit_weights=False,
        validation=None,
        moves=True,
        design=None,
    ):
        self.plan = plan
        self.moves = moves
        self.design = design
        self.likelihood = likelihood
        self.printer = printer
        self.unit_weights = unit_weights
        self.validation = validation

    def fit(self, gate, experts, X, Z, y, sample_weight, resp, rng):
        """EM from initial responsibilities, then merge-and-split moves.

        A move (after Ueda et al., 2000, "SMEM algorithm for mixture models")
        merges one of two near-identical experts into the other, restarts it on
        half the rows of the worst-fitting expert and runs EM again; it is kept
        only if the objective rises by more than ``tol``. At most ``n_experts``
        moves are made.

        In a hierarchy, moves stay among the experts of one branch: a leaf can
        only take rows that its branch is routed. A branch may then have no
        redundant pair while one of its experts straddles two regimes and
        another sits nearly idle; the idle one is freed instead.
        """
        # the rows' outer products, formed once for all the runs' M-steps
        design = self.design
        if design is None:
            design = Design(Z, gate.scaler_, n_experts=resp.shape[1])
        data = (X, design, y, sample_weight)
        run = self.run(gate, experts, *data, resp, rng)
        idle_tried = set()
        max_moves = resp.shape[1] if self.moves is True else int(self.moves)
        for _ in range(max_moves):
            groups = self.plan.groups(run.resp.shape[1])  # fewer, if experts were dropped
            pair = redundant_pair(run.distance, run.resp, sample_weight, groups)
            if pair is None and len(groups) > 1:
                idle = idle_expert(run.resp, sample_weight, groups, exclude=idle_tried)
                pair = None if idle is None else (None, idle)
            if pair is None:
                break
            trial = self._move(run, *pair, groups, data, rng)
            if trial is None:
                if pair[0] is not None:
                    break
                idle_tried.add(pair[1])  # a failed idle move: try the next idle expert
                continue
            trial.lower_bounds = np.concatenate([run.lower_bounds, trial.lower_bounds])
            if self.validation is not None:
                trial.validation_scores = np.concatenate(
                    [run.validation_scores, trial.validation_scores]
                )
            trial.n_expert_restarts += run.n_expert_restarts
            trial.n_objective_falls += run.n_objective_falls
            trial.n_merges = run.n_merges + 1
            run = trial
        return run

    def _move(self, run, keep, free, groups, data, rng):
        """The run of a merge-and-split move that frees expert ``free`` (merged
        into ``keep``, or idle where ``keep`` is None), if it is kept; else
        None."""
        X, design, y, sample_weight = data
        siblings, rows = _branch(groups, free, run.resp)
        merged = run.resp.copy()
        if keep is not None:
            merged[:, keep] += merged[:, free]
        merged[:, free] = 0.0  # an idle expert's few rows go to the next E-step
        # two ways to re-use the freed expert: on half of the worst expert's
        # rows, else on the worst-fitted rows of the whole mixture
        # (each start made only when its trial runs, and a failed trial let go
        # before the next: on the GPU, memory holds few copies of the rows)
        split = functools.partial(
            split_worst_expert, merged, free, design.Z, run.log_lik, sample_weight, rng, siblings
        )
        restart = functools.partial(
            restart_experts, merged, [free], sample_weight, run.row_log_lik, rng, rows
        )
        what = f"idle expert {free}" if keep is None else f"expert {free} merged into {keep}"
        for how, start in (
            ("restarted on half the worst expert's rows", split),
            ("restarted on the worst-fitted rows", restart),
        ):
            trial, start_resp = None, start()
            if start_resp is None:
                continue
            self.printer.move_start(f"{what}, {how}")
            trial_gate, trial_experts = copy.deepcopy((run.gate, run.experts))
            trial = self.run(
                trial_gate, trial_experts, *data, start_resp, rng, row_log_lik=run.row_log_lik
            )
            # a trial that dropped a failing expert is kept whatever its
            # objective: the expert failed, and the fit ends without it.
            # Else it must gain more than tol: EM stops within about tol
            # of where it would settle, so a smaller gain is no gain (on
            # 14k rows of wages, K=8, the last four of eight moves kept
            # gained 7e-5 to 8e-4 and cost 40% of the fit)
            dropped = _n_dropped(trial.experts) > _n_dropped(run.experts)
            kept = dropped or self._gains(trial, run)
            self.printer.move_end(kept, trial.lower_bound, run.lower_bound)
            if kept:
                return trial
        return None

    def _gains(self, trial, run):
        """Whether a move's trial beats its run by more than ``tol``: in
        held-out log-likelihood where rows are held out, else in the objective."""
        if self.validation is None:
            return trial.lower_bound > run.lower_bound + self.plan.tol
        return trial.validation_scores.max() > run.validation_scores.max() + self.plan.tol

    def run(self, gate, experts, X, design, y, sample_weight, resp, rng, row_log_lik=None):
        """EM iterations until the objective settles. Each iteration is an M-step
        then an E-step, so the objective recorded is that of the parameters kept.
        ``design`` is the :class:`~skmoe._design.Design` of the standardised rows.

        With the built-in experts, every third iteration is SQUAREM's: EM from
        the extrapolation of the two before (see :mod:`skmoe._acceleration`),
        recorded only where its objective beats theirs. ``max_iter`` counts
        every iteration tried.

        ``row_log_lik`` is the rows' fit before the first step (a move's trial
        has its run's), by which a dead expert is restarted on the worst-fitted
        rows; without it, rows drawn at random."""
        plan, data = self.plan, (X, design, y, sample_weight)
        total = float(sample_weight.sum())  # once: on the GPU each sum waits for the device
        restarts = np.zeros(resp.shape[1], dtype=int)
        lower_bound, converged, gate_resp = -np.inf, False, resp
        progress = _Progress(self)
        # SQUAREM's iterates since the last restart or extrapolation
        path, n_iter = [], 0
        while n_iter < plan.max_iter:
            resp, dead = self._restart_dead_experts(
                resp, sample_weight, total, restarts, row_log_lik, rng
            )
            gate_resp = resp if dead.size else gate_resp
            # the last step's (n, K) arrays let go before the next step makes
            # its own: on the GPU, memory holds only so many of them
            outputs = log_lik = None
            step, kept = self._step_dropping(gate, experts, *data, resp, gate_resp, rng)
            n_iter += 1
            outputs, params, log_lik, resp, gate_resp, row_log_lik = step
            restarts = restarts[kept]
            previous = lower_bound
            lower_bound = self._objective(gate, experts, params, row_log_lik, sample_weight, total)
            progress.record(lower_bound, (gate, experts, params))
            if dead.size:
                path = []
                progress.restarted()
                continue  # a restart may lower the objective: no judgement on it
            converged = progress.settled(lower_bound, previous)
            if converged:
                break
            if plan.builtin:
                path.append(self._iterate(gate, experts, params))
            # a full path is extrapolated, and the next one starts from the
            # state kept: its last iterate, or the trial's
            point, path = (squarem_point(*path), path[-1:]) if len(path) == 3 else (None, path)
            if point is not None and n_iter < plan.max_iter:
                n_iter += 1
                trial = self._extrapolated_step(
                    point, lower_bound, total, gate, experts, *data, rng
                )
                if trial is not None:
                    gate, experts, step, lower_bound = trial
                    outputs, params, log_lik, resp, gate_resp, row_log_lik = step
                    progress.record(lower_bound, (gate, experts, params))
                    path = [self._iterate(gate, experts, params)]
        if progress.held_out.state is not None:  # the best iteration on the held-out rows
            gate, experts, params, lower_bound = progress.held_out.state
            outputs, log_lik, resp, row_log_lik = self._e_step(gate, experts, params, *data)
        return FitResult(
            gate=gate,
            experts=experts,
            params=params,
            converged=converged,
            lower_bound=lower_bound,
            lower_bounds=np.asarray(progress.lower_bounds),
            validation_scores=progress.validation_scores(),
            n_expert_restarts=int(restarts.sum()),
            n_objective_falls=progress.falls,
            resp=resp,
            log_lik=log_lik,
            row_log_lik=row_log_lik,
            distance=_distance(self.likelihood, outputs, params, experts, X),
        )

    def _e_step(self, gate, experts, params, X, design, y, sample_weight):
        """The experts' outputs, log-likelihoods, responsibilities and each
        row's log-likelihood under the given parameters."""
        likelihood = self.likelihood
        outputs = likelihood.outputs(experts, X)
        log_lik = likelihood.log_lik(outputs, y, params)
        resp, _, row_log_lik = posteriors(gate, design.Z, log_lik)
        return outputs, log_lik, resp, row_log_lik

    def _restart_dead_experts(self, resp, sample_weight, total, restarts, row_log_lik, rng):
        """Restart (see :func:`~skmoe._em.restart_experts`) each expert whose
        load is below ``min_expert_load``, at most ``MAX_RESTARTS_PER_EXPERT``
        times each (counted in ``restarts``). Returns the responsibilities and
        the experts restarted."""
        dead = dead_experts(resp, sample_weight, total, restarts, self.plan.min_expert_load)
        # restarts are part of EM, not a fault: counted in
        # n_expert_restarts_ and printed at verbose, never warned of (more
        # experts than the data has regimes leave some idle, by design)
        self.printer.restarts(dead)
        for k in dead:
            rows = _branch(self.plan.groups(resp.shape[1]), k, resp)[1]
            resp = restart_experts(resp, [k], sample_weight, row_log_lik, rng, rows)
            restarts[k] += 1
        return resp, dead

    def _objective(self, gate, experts, params, row_log_lik, sample_weight, total):
        """EM's objective: the weighted mean log-likelihood less the penalties,
        per unit of the weights' ``total``."""
        penalty = float(gate.penalty() + self.likelihood.penalty(experts, params))
        return (weighted_sum(sample_weight, row_log_lik) - penalty) / total

    def _iterate(self, gate, experts, params):
        """The parameters SQUAREM moves (see :func:`~skmoe._acceleration.em_iterate`)."""
        likelihood = self.likelihood
        return em_iterate(gate, experts, likelihood.params_arrays(params), likelihood.unit)

    def _extrapolated_step(
        self, point, bound, total, gate, experts, X, design, y, sample_weight, rng
    ):
        """SQUAREM's iteration: EM from ``point``, the extrapolation of three
        iterates, on copies of ``gate`` and ``experts``. Returns the copies, the
        step's results and its objective where that beats ``bound``, else None
        (and where the point leaves a row impossible)."""
        likelihood = self.likelihood
        gate, experts = copy.deepcopy((gate, experts))
        params = likelihood.params_from_arrays(
            set_em_iterate(point, gate, experts, likelihood.unit)
        )
        log_lik = likelihood.experts_log_lik(experts, X, y, params)
        resp, gate_resp, row_log_lik = posteriors(gate, design.Z, log_lik)
        del log_lik
        if not all_finite(row_log_lik):
            return None
        step = self._step(gate, experts, X, design, y, sample_weight, resp, gate_resp, rng)
        objective = self._objective(gate, experts, step[1], step[-1], sample_weight, total)
        return (gate, experts, step, objective) if objective > bound else None

    def _step_dropping(self, gate, experts, X, design, y, sample_weight, resp, gate_resp, rng):
        """:meth:`_step`; with ``expert_failure="drop"``, experts whose fit
        or predict fails are dropped and the step taken again without them.
        Returns the step's results and the indices of the experts kept."""
        kept = np.arange(resp.shape[1])
        while True:
            try:
                step = self._step(gate, experts, X, design, y, sample_weight, resp, gate_resp, rng)
                return step, kept
            except ExpertFitError as failure:
                if self.plan.expert_failure == "raise" or not hasattr(experts, "drop"):
                    raise
                keep = _drop_experts(failure, gate, experts)
                kept = kept[keep]
                resp, gate_resp = _renormalised(resp[:, keep]), _renormalised(gate_resp[:, keep])

    def _step(self, gate, experts, X, design, y, sample_weight, resp, gate_resp, rng):
        """One EM iteration: the M-step of the gate and the experts from the
        responsibilities, then the E-step. Refits ``gate`` and ``experts`` in
        place; returns the experts' outputs, the noise parameters, the
        log-likelihoods, the new responsibilities (the experts', the gate's)
        and each row's log-likelihood."""
        unit, likelihood = self.unit_weights, self.likelihood
        targets = gate_resp if unit else gate_resp * sample_weight[:, None]
        weights = resp if unit else resp * sample_weight[:, None]
        gate.fit_standardized(design.Z, targets, design)
        # the built-in experts solve on the design's rows where it has their
        # products (see skmoe._design)
        builtin = {"design": design} if self.plan.builtin else {}
        experts.fit(X, y, weights, random_state=rng, **builtin)
        log_lik = likelihood.fused_log_lik(experts, X, y)
        if log_lik is not None and all_finite(log_lik):
            # straight from the experts (a likelihood of no parameters); the
            # outputs are formed only if a move asks for them
            outputs = params = None
        else:  # from the outputs, which name an expert that fails
            outputs = likelihood.outputs(experts, X)
            _check_finite_outputs(outputs, weights)
            params = likelihood.update_params(experts, outputs, y, weights)
            log_lik = likelihood.log_lik(outputs, y, params)
        del weights  # let go before the E-step makes its (n, K) arrays
        return outputs, params, log_lik, *posteriors(gate, design.Z, log_lik)


class _Progress:
    """What a run records of its iterations (objectives, held-out scores,
    falls), and its judgement of whether they have settled."""

    def __init__(self, em):
        self.plan, self.printer = em.plan, em.printer
        self.likelihood, self.validation = em.likelihood, em.validation
        self.lower_bounds, self.scores, self.falls = [], [], 0
        # wrapped experts' fits need not maximise their weighted likelihood
        # (a tree's greedy splits), so the objective can fall: EM has then
        # converged once n_iter_no_change iterations have not raised its best
        self.best, self.stale = -np.inf, 0
        self.gain = None  # the last plain EM step's, for Aitken's estimate
        self.held_out = Best(keep=em.validation is not None)

    def record(self, lower_bound, state):
        """Record (and print) an iteration's objective; score ``state``,
        ``(gate, experts, params)``, on the held-out rows."""
        previous = self.lower_bounds[-1] if self.lower_bounds else -np.inf
        self.lower_bounds.append(lower_bound)
        self.printer.iter_end(lower_bound, lower_bound - previous)
        if self.validation is not None:
            score = validation_score(self.likelihood, *state, self.validation)
            self.scores.append(score)
            self.held_out.update(score, self.plan.tol, (*state, lower_bound))

    def settled(self, lower_bound, previous):
        """Whether EM has converged at an iteration that took the objective
        from ``previous`` to ``lower_bound``."""
        plan = self.plan
        self.falls += bool(previous - lower_bound > _FALL_RTOL * abs(previous))
        if plan.builtin:
            gain, last = lower_bound - previous, self.gain
            self.gain = gain
            converged = abs(gain) < plan.tol and _remaining(gain, last) < plan.tol
        else:
            risen = lower_bound > self.best + plan.tol
            self.best, self.stale = (lower_bound, 0) if risen else (self.best, self.stale + 1)
            converged = self.stale >= plan.n_iter_no_change
        # held-out rows stop EM as they stop gradient training
        return converged or self.held_out.no_change > plan.n_iter_no_change

    def validation_scores(self):
        return None if self.validation is None else np.asarray(self.scores)

    def restarted(self):
        """Forget the last gain: a restart breaks the run of steps."""
        self.gain = None


def _remaining(gain, last):
    """Aitken's estimate of what EM has yet to gain, from its last two plain
    steps' gains: ``gain r / (1 - r)``, ``r = gain / last``, as if they shrank
    geometrically (infinite where they do not shrink, or there is no ``last``;
    0 where either is a fall, which only rounding makes).

    A small gain is no sign of the end: on 50,000 rows of 10 classes, K=8,
    EM's gains fell by a ratio of about 0.9 to under 1e-3 at iteration 30,
    with some nine times that ahead (held-out accuracy 0.685, against 0.725
    from a fit that went on; ``benchmarks/results/cpu_notes.md``). The
    estimate is Böhning et al.'s (1994, "The distribution of the likelihood
    ratio for mixtures of densities from the one-parameter exponential
    family"); MoEClust, R's mixtures of experts, stops EM by it by default.
    """
    if last is None:
        return np.inf
    if gain <= 0 or last <= 0:
        return 0.0
    ratio = gain / last
    return np.inf if ratio >= 1 else gain * ratio / (1 - ratio)


def _distance(likelihood, outputs, params, experts, X):
    """``(a, b) ->`` the per-row distances between experts a and b (see
    the likelihoods' ``distance``), from the experts' ``outputs`` on ``X``;
    where the E-step kept none, formed at the first call."""

    @functools.cache
    def kept():
        return likelihood.outputs(experts, X) if outputs is None else outputs

    return lambda a, b: likelihood.distance(kept(), params, a, b)


def dead_experts(resp, sample_weight, total, restarts, min_load):
    """The experts whose load (share of the weighted responsibilities, whose
    sum is ``total``) is under ``min_load`` and who have restarts left."""
    load = to_numpy(sample_weight @ resp) / total
    return np.flatnonzero((load < min_load) & (restarts < MAX_RESTARTS_PER_EXPERT))


def _check_finite_outputs(outputs, weights):
    """Raise :class:`ExpertFitError` naming each expert whose outputs on the
    training rows hold NaN or infinity."""
    if all_finite(outputs):  # one sum: CuPy's reduction along the rows is slow
        return
    xp = get_namespace(outputs)
    finite = xp.isfinite(outputs).reshape(outputs.shape[0], outputs.shape[1], -1)
    bad = np.flatnonzero(~to_numpy(finite.all(axis=(0, 2))))
    if bad.size:
        error = ValueError("its outputs on the training rows hold NaN or infinity")
        raise ExpertFitError({int(k): error for k in bad}, to_numpy(column_sum(weights)))


def _drop_experts(failure, gate, experts):
    """Remove the failed experts from ``experts`` and the gate, warn, and
    return the indices of those kept."""
    failed = sorted(failure.errors)
    keep = [k for k in range(experts.n_experts) if k not in failed]
    if not keep:
        raise failure
    original = getattr(experts, "indices_", list(range(experts.n_experts)))
    experts.dropped_ = [*getattr(experts, "dropped_", []), *(original[k] for k in failed)]
    experts.indices_ = [original[k] for k in keep]
    experts.drop(failed)
    gate.drop_experts(keep)
    warn(f"{failure.details}. Dropped (expert_failure='drop'); {len(keep)} experts remain.")
    return keep


def _n_dropped(experts):
    """How many experts ``expert_failure="drop"`` has dropped from the set."""
    return len(getattr(experts, "dropped_", []))


def _renormalised(resp):
    """Rows rescaled to sum to 1; a row left with no weight is spread evenly."""
    xp = get_namespace(resp)
    total = resp.sum(axis=1, keepdims=True)
    return xp.where(total > 0, resp / xp.where(total > 0, total, 1.0), 1.0 / resp.shape[1])


def _branch(groups, expert, resp):
    """The experts of ``expert``'s branch, and a mask of the rows they own
    (None when there is one branch: all rows)."""
    siblings = next(g for g in groups if expert in g)
    if len(groups) == 1:
        return siblings, None
    xp = get_namespace(resp)
    return siblings, xp.isin(resp.argmax(axis=1), xp.asarray(siblings))
