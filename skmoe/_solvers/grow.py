"""``n_experts="auto"``: the mixture grows from one expert, one split at a
time, while a criterion says that each split is real.

The first fit has one expert: the single model. Each step gives a new expert
half of the rows of an expert that fits its rows badly (2-means halves in the
gate's input, as a merge-and-split move does; see
:func:`~skmoe._em.split_worst_expert`), runs the solver from there and keeps
the larger mixture only if the criterion improves:

- the Bayesian information criterion (Schwarz, 1978) for the built-in
  experts, whose parameters can be counted: ``-2 log L + p log n``, where a
  split adds the new expert's parameters and a column of the gate's;
- the mean log-likelihood of held-out rows otherwise (wrapped experts, or
  ``early_stopping=True``), which must rise by more than ``tol``.

This is the order in which Ueda et al.'s split moves and bisecting k-means
grow a model, with the stopping rule of a model-selection criterion rather
than a fixed K. While the best size is one expert, a split that does not
pay first gets one merge-and-split move: 2-means halves of rows that are
not clusters in the input (two laws mixed over one region) can settle as
two near-identical experts, and the move merges them and splits anew (on
log wages, over 8 seeds, the growth stopped at one expert on 3 without it,
on none with it). If it still does not pay, the growth goes on one more
size from it, splitting another expert (an expert of large noise fits worst
yet has nothing to split), and then ends at the best size seen.
"""

import copy
from typing import NamedTuple

import numpy as np

from .._backend import get_namespace
from .._design import Design
from .._em import posteriors, split_expert, worst_expert
from .._math import weighted_sum
from .init import fit_from, new_start
from .result import FitResult
from .stopping import validation_score

# Sizes grown past the best before the growth stops: a split that does not
# pay on its own may prepare one that does (two regimes under one expert,
# each with its own class boundary, may need two more experts to gain).
PATIENCE = 1


class _Size(NamedTuple):
    """The fit of one size: the solver's result, its criterion, and the
    expert split to reach it (None for the first)."""

    run: FitResult
    criterion: float
    split: int | None = None


class Growth:
    """Grow the mixture of ``plan`` (whose ``n_experts`` is the most it may
    reach) with ``solver(plan, moves=, design=)``, a solver of the mixture of
    that size, with merge-and-split moves or without, on the rows of a
    :class:`~skmoe._design.Design` that all sizes share.

    ``n_rows`` is the number of rows of positive weight the fit was given
    (before equal rows were merged): BIC's ``n``. With held-out rows
    ``validation`` the criterion is their log-likelihood, else BIC.
    """

    def __init__(self, plan, likelihood, solver, *, n_rows, validation=None):
        self.plan = plan
        self.likelihood = likelihood
        self.solver = solver
        self.n_rows = n_rows
        self.validation = validation
        self._design = None

    @property
    def criterion(self):
        """The name of the criterion: ``"bic"`` or ``"validation_log_likelihood"``."""
        return "bic" if self.validation is None else "validation_log_likelihood"

    def fit(self, X, y, sample_weight, rng):
        """The mixture grown from one expert: the result of the size kept,
        its criterion, the standardised rows, and the path, a dict of the
        sizes fitted (``"n_experts"``), their criterion (under its name) and
        whether each was kept (``"kept"``)."""
        size, Z = self._fit_size(1, X, y, sample_weight, rng)
        best, path, misses, stale = size, [(1, size.criterion, True)], 0, []
        while size.run.resp.shape[1] < self.plan.n_experts:
            trial = self._split(size.run, X, Z, y, sample_weight, rng, stale)
            if trial is None:
                break
            kept = self.better(trial.criterion, best.criterion)
            if not kept and best.run.resp.shape[1] == 1:
                # a first split that does not pay may be a poor split of a
                # real regime, whose halves EM settles as twins: one
                # merge-and-split move splits anew before it counts as a miss
                trial = self._polished(trial, X, Z, y, sample_weight, rng, moves=1)
                kept = self.better(trial.criterion, best.criterion)
            path.append((trial.run.resp.shape[1], trial.criterion, kept))
            if kept:
                best, misses, stale = trial, 0, []
            else:
                misses += 1
                if misses > PATIENCE:
                    break
                # the two halves of a split that did not pay are split again
                # last: an expert of large noise fits worst, and gains nothing
                stale = [trial.split, trial.run.resp.shape[1] - 1]
            size = trial
        best = self._polished(best, X, Z, y, sample_weight, rng)
        # the size kept is recorded with its polished criterion
        kept_size = best.run.resp.shape[1]
        path = [(k, best.criterion if k == kept_size else c, ok) for k, c, ok in path]
        sizes, scores, kept = map(np.array, zip(*path, strict=True))
        path = {"n_experts": sizes, self.criterion: scores, "kept": kept}
        return best.run, best.criterion, Z, path

    def _polished(self, size, X, Z, y, sample_weight, rng, moves=True):
        """A size continued by EM with its merge-and-split moves (all it
        finds, or at most ``moves``): a grown mixture can hold two experts
        on one regime as a fit from k-means can (on log wages, K=5, the moves
        took the held-out R^2 from 0.479 to 0.481). One expert has no move
        to make. The size as it was where that scores better (EM's last
        iterations can lower the held-out rows' score)."""
        if self.plan.solver != "em" or size.run.resp.shape[1] == 1:
            return size
        run = size.run
        plan = self.plan.sized(run.resp.shape[1])
        label = f"with {plan.n_experts} experts, and moves"
        # copies: EM refits the gate and experts it is given in place
        start = (*copy.deepcopy((run.gate, run.experts)), Z, run.resp)
        solver = self.solver(plan, moves=moves, design=self._shared_design(Z, run.gate, plan))
        run = fit_from(solver, label, start, X, y, sample_weight, rng)
        polished = _Size(run, self._criterion(run, sample_weight, X.shape[1]), size.split)
        return size if self.better(size.criterion, polished.criterion) else polished

    def better(self, criterion, than):
        """Whether ``criterion`` beats ``than``: a lower BIC, or a held-out
        log-likelihood higher by more than ``tol``."""
        if self.validation is not None:
            return criterion > than + self.plan.tol
        return criterion < than

    def _fit_size(
        self, n_experts, X, y, sample_weight, rng, resp=None, split=None, gate=None, Z=None
    ):
        """The fit of ``n_experts`` experts from ``resp`` (one expert: all
        rows) and the gate's coefficients ``gate`` (see
        :func:`~skmoe._solvers.init.new_start`), with its last E-step; and
        the standardised rows ``Z`` (made by the first size)."""
        plan = self.plan.sized(n_experts)
        if resp is None:
            resp = get_namespace(X).ones((X.shape[0], 1), dtype=X.dtype)
        start = new_start(
            plan, self.likelihood, X, sample_weight, rng, resp=resp, gate_coefficients=gate, Z=Z
        )
        label = f"with {n_experts} expert{'s' * (n_experts > 1)}"
        Z = start[2]
        solver = self.solver(plan, moves=False, design=self._shared_design(Z, start[0], plan))
        run = fit_from(solver, label, start, X, y, sample_weight, rng)
        if run.resp is None:  # gradient training ends without an E-step
            run.log_lik = self.likelihood.experts_log_lik(run.experts, X, y, run.params)
            run.resp, _, run.row_log_lik = posteriors(run.gate, Z, run.log_lik)
        return _Size(run, self._criterion(run, sample_weight, X.shape[1]), split), Z

    def _split(self, run, X, Z, y, sample_weight, rng, stale):
        """The fit one expert larger, from a split of the worst-fitting expert
        (of those not ``stale``, if any), or None where none can be split."""
        n_experts = run.resp.shape[1]
        xp = get_namespace(run.resp)
        pad = xp.zeros((run.resp.shape[0], 1), dtype=run.resp.dtype)
        resp = xp.hstack([run.resp, pad])
        log_lik = xp.hstack([run.log_lik, pad.astype(run.log_lik.dtype)])
        fresh = np.setdiff1d(np.arange(n_experts), stale)
        candidates = fresh if fresh.size else np.arange(n_experts)
        while candidates.size:
            worst = worst_expert(resp, log_lik, sample_weight, candidates)
            start = split_expert(resp, n_experts, worst, Z, sample_weight, rng)
            if start is not None:
                # the gate starts where it was, the split expert's logits
                # copied for the new one: its Newton steps then need only
                # move the two halves apart
                gate = [
                    xp.concatenate([a, a[..., [worst]]], axis=-1) for a in run.gate.coefficients()
                ]
                grown = (n_experts + 1, X, y, sample_weight, rng, start, worst, gate, Z)
                return self._fit_size(*grown)[0]
            candidates = np.setdiff1d(candidates, [worst])
        return None

    def _shared_design(self, Z, gate, plan):
        """The :class:`~skmoe._design.Design` of the rows ``Z`` for a fit of
        ``plan``: one for every size from the first whose fits its rows' outer
        products pay (see :mod:`skmoe._design`), formed once; below it,
        each size's own."""
        if self._design is None or not self._design.has_outer_products:
            self._design = Design(Z, gate.scaler_, n_experts=plan.n_experts)
        return self._design

    def _criterion(self, run, sample_weight, n_features):
        """The held-out rows' mean log-likelihood, or BIC on the training rows."""
        if self.validation is not None:
            model = (run.gate, run.experts, run.params)
            return validation_score(self.likelihood, *model, self.validation)
        n = self.n_rows
        mean_log_lik = weighted_sum(sample_weight, run.row_log_lik) / float(sample_weight.sum())
        n_experts = run.resp.shape[1]
        n_parameters = run.gate.n_parameters() + self.plan.n_expert_parameters(
            self.likelihood, n_experts, n_features
        )
        return -2 * n * mean_log_lik + n_parameters * np.log(n)
