"""Stepwise online EM for the built-in experts, and what partial_fit keeps
between chunks.

After Cappé and Moulines (2009), "On-line expectation-maximization algorithm
for latent data models": each chunk of rows gets an E-step under the current
parameters; the experts' sufficient statistics (per unit of weight) move
towards the chunk's by a step ``t ** -STEP_DECAY`` at the ``t``-th chunk;
the M-step solves the experts from the running statistics. The gate has no
finite sufficient statistics: its loss on past chunks is kept as running
sums of second-order expansions, its loss on the current chunk exactly, and
the model predicts with the mean of its iterates (:class:`OnlineGate`).

Stepwise EM refines a mixture; it does not move an expert from one regime to
another once the statistics have settled. So the first rows are kept until
they hold ``WARM_UP_ROWS_PER_PARAMETER`` rows per parameter of the mixture
and fitted by batch EM (k-means start, merge-and-split moves, restarts) at
each call; stepwise EM starts from that fit. Later, one online analogue of a
merge-and-split move is tried per chunk and kept only if the next chunk,
which neither the mixture nor the trial has seen, is fitted significantly
better (:func:`significantly_better`); the experts it moves restart their
statistics.

The running statistics are float64 whatever the input's type: they are sums
over many chunks. The experts solved from them take the chunk's type.

Written here because no library offers online EM for mixtures of experts.
"""

import copy

import numpy as np
import scipy.linalg
import scipy.sparse as sp
import scipy.special

from ._optim import _damped_cholesky, _softmax_hessian, intercept_free_penalty
from .experts._linear import _normal_equations, _weighted_squares

# Gates of up to this many coefficients take Newton steps on the formed
# Hessian, which the expansions keep; larger ones take the batch gate's
# truncated Newton steps (see skmoe._optim.fit_softmax_newton).
_NEWTON_MAX_PARAMS = 256

# Cappé and Moulines need 1/2 < decay <= 1; a smaller decay forgets the
# statistics of early chunks, made under worse parameters, sooner.
STEP_DECAY = 0.6

# Rows kept and fitted by batch EM before stepwise EM starts, per parameter
# of the mixture (gate and experts). EM needs enough rows per expert to place
# the experts on the regimes; started from k-means on a first chunk of 800
# rows, 8 experts of 17 coefficients shared regimes, which stepwise EM rarely
# undoes. With 10 rows per parameter (the usual rule of thumb for a
# regression) 4 of the 72 draws of benchmarks/online.py ended more than 0.02
# of R^2 short of the batch fit, with 20 none did.
WARM_UP_ROWS_PER_PARAMETER = 20

# ... and at most this many rows, whatever the parameters (sparse data with
# many features): they are held in memory and batch EM on them runs per call.
WARM_UP_MAX_ROWS = 50_000

# A move is kept if the next chunk's mean log-likelihood per row rises by more
# than this many of its standard errors (paired over the rows): a one-sided
# test at about 2%, so that a chunk's noise does not swap experts around.
MOVE_Z = 2.0


def warm_up_rows(n_parameters):
    """Rows to keep before stepwise EM starts, for a mixture of this many parameters."""
    return min(WARM_UP_ROWS_PER_PARAMETER * n_parameters, WARM_UP_MAX_ROWS)


def significantly_better(new, old, sample_weight):
    """Whether per-row log-likelihoods ``new`` beat ``old`` on the same rows
    by more than ``MOVE_Z`` standard errors of their weighted mean difference."""
    weight = sample_weight / sample_weight.sum()
    difference = np.asarray(new, dtype=np.float64) - old
    mean = weight @ difference
    standard_error = np.sqrt(weight**2 @ (difference - mean) ** 2)
    return bool(mean > MOVE_Z * standard_error)


def removal_costs(log_gate, log_lik, sample_weight):
    """Per expert, the weighted log-likelihood the rows lose if it is removed
    and the (dense) gate renormalised over the others: small for an idle
    expert and for either of two that model the same regime."""
    n_experts = log_lik.shape[1]
    joint = log_gate + log_lik
    row_log_lik = scipy.special.logsumexp(joint, axis=1)
    costs = np.empty(n_experts)
    for k in range(n_experts):
        others = np.arange(n_experts) != k
        without = scipy.special.logsumexp(joint[:, others], axis=1)
        without -= scipy.special.logsumexp(log_gate[:, others], axis=1)
        costs[k] = sample_weight @ (row_log_lik - without)
    return costs


class OnlineState:
    """What ``partial_fit`` carries from one chunk to the next.

    ``rows`` holds the warm-up chunks ``(X, y, sample_weight)`` (None once
    stepwise EM has started), ``start`` the gate, experts and likelihood
    parameters that warm-up EM continues from (the last warm-up fit, or a
    model fitted by ``fit``: then ``fitted``, and EM is not started afresh
    from k-means), ``experts`` and ``gate`` the running statistics,
    ``iterate`` the gate of the last E-step (the model predicts with its
    average), ``trial`` the mixture with one move made on the last chunk
    (gate, experts, their statistics and the likelihood's parameters),
    ``rng`` the moves' random state and ``n_chunks`` the chunks seen.
    """

    def __init__(self, rng, start=None):
        self.rows, self.start, self.fitted, self.rng = [], start, start is not None, rng
        self.experts = self.gate = self.iterate = self.trial = None
        self.n_chunks = 0


class _RunningAverage:
    """Statistics per unit of weight, each chunk's blended in by a step
    ``(chunk weight / weight seen) ** STEP_DECAY``: ``(1/t) ** decay`` at the
    ``t``-th of equal chunks, and a small chunk moves them less. The first axis
    of every statistic indexes the experts; an expert restarted by a move
    counts its weight seen from the restart (``since``), so its steps start
    again from 1 as a new expert's would."""

    def __init__(self):
        self.n_steps = 0
        self.weight = 0.0
        self.since = None  # per expert, the weight seen since it started
        self._before = self._current = None  # the statistics before and after the last chunk

    def _blend(self, chunk, total, again, restart=()):
        """Blend in ``chunk`` (sums over ``total`` weight); ``again`` replaces
        the last chunk's contribution (a refined E-step of the same chunk)
        instead of adding a new one. The experts in ``restart`` forget their
        past: a move has given them new rows, and statistics of the rows they
        had would pull them back."""
        chunk = tuple(value / total for value in chunk)
        if not again:
            self.n_steps += 1
            self.weight += total
            self.since = np.full(len(chunk[0]), 0.0) if self.since is None else self.since.copy()
            self.since += total
            self._before = self._current
        if len(restart):
            self.since = self.since.copy()
            self.since[list(restart)] = total
        if self._before is None:
            self._current = chunk
            return chunk
        step = (total / self.since) ** STEP_DECAY
        self._current = tuple(
            old + step.reshape((-1,) + (1,) * (new.ndim - 1)) * (new - old)
            for old, new in zip(self._before, chunk, strict=True)
        )
        return self._current


class OnlineStatistics(_RunningAverage):
    """Running sufficient statistics of K linear experts.

    ``gram`` and ``rhs`` are the normal equations of ``x1 = [x - offset, 1]``
    with the offset fixed by the first chunk (its column means, 0 for sparse
    input), ``yy`` the weighted squares of ``y``, all per unit of weight;
    ``weight`` counts the rows' weight seen so far.
    """

    def __init__(self):
        super().__init__()
        self.offset = None

    def update(self, experts, X, y, weights, *, again=False, restart=()):
        """Blend in one chunk's weighted rows and solve ``experts`` from the
        running statistics."""
        self.offset, gram, rhs = _normal_equations(X, y, weights, offset=self.offset)
        yy = _weighted_squares(y, weights)
        total = weights.sum(dtype=np.float64)
        self.gram, self.rhs, self.yy = self._blend((gram, rhs, yy), total, again, restart)
        experts.solve(
            self.offset,
            self.gram * self.weight,
            self.rhs * self.weight,
            dtype=X.dtype,
            yy=lambda: self.yy * self.weight,
        )
        return self

    def residual_sum_of_squares(self, theta):
        """Each expert's weighted residual sum of squares at ``theta`` (K, d + 1),
        in totals over the rows seen."""
        quadratic = np.einsum("ki,kij,kj->k", theta, self.gram, theta)
        per_weight = self.yy - 2 * np.einsum("ki,ki->k", theta, self.rhs) + quadratic
        return np.maximum(per_weight, 0.0) * self.weight


class OnlineLogisticStatistics(_RunningAverage):
    """Running quadratic approximations of K logistic experts' losses.

    Logistic regression has no finite sufficient statistics; each chunk's
    weighted loss is replaced by its second-order expansion at the experts'
    parameters when the chunk is seen, ``1/2 t^T H t - (H t0 - g)^T t``, whose
    sums are running ``hessian`` and ``rhs`` per unit weight: the M-step then
    solves one penalised linear system per expert (one Newton step on the
    approximated total loss).
    """

    def update(self, experts, X, y, weights, *, again=False, restart=()):
        """Blend in one chunk's expansion and solve ``experts`` from the sums."""
        ones = np.ones((X.shape[0], 1))  # float64: so is X1, and the expansion
        X1 = sp.hstack([X, ones], format="csr") if sp.issparse(X) else np.hstack([X, ones])
        theta = experts.parameters(X.shape[1])  # (K, m * (d + 1))
        hessian = np.empty((experts.n_experts, theta.shape[1], theta.shape[1]))
        rhs = np.empty(theta.shape)
        for k in range(experts.n_experts):
            grad, hessian[k] = experts.loss_derivatives(k, X1, y, weights[:, k])
            rhs[k] = hessian[k] @ theta[k] - grad
        total = weights.sum(dtype=np.float64)
        self.hessian, self.rhs = self._blend((hessian, rhs), total, again, restart)
        experts.solve(self.hessian * self.weight, self.rhs * self.weight, dtype=X.dtype)
        return self


class OnlineGate:
    """Running second-order expansions of a softmax gate's loss.

    The gate's M-step minimises the cross-entropy of its probabilities
    against the E-step's targets, summed over the rows seen; it has no finite
    sufficient statistics. Refitted on each chunk alone, the gate follows
    that chunk's noise: its boundaries are drawn from one chunk's rows,
    whatever came before. Here each past chunk's loss is kept as its second-order
    expansion at the gate's parameters once the chunk is done, summed per
    unit weight as the experts' statistics are (``hessian``, ``rhs``, the
    same steps), and the current chunk's loss is kept exactly: the M-step
    minimises ``(1 - step) * (1/2 t^T H t - rhs^T t) + step * chunk loss``
    plus the gate's penalty, by Newton steps with a backtracking line
    search (at most the gate's ``max_iter``, to its ``tol``). The iterates
    are averaged too (:meth:`averaged`).

    Gates of sparse input or of more than 256 coefficients have a Hessian
    too large to keep: they take the batch gate's own warm-started steps on
    the chunk alone.
    """

    def __init__(self):
        self.n_steps = 0
        self.weight = 0.0
        self._before = self._current = None
        # the weighted mean of the gate's iterates, (coef, intercept), and its weight
        self.mean, self.mean_weight, self._mean_before = None, 0.0, None

    def update(self, gate, Z, targets, *, again=False, restart=()):
        """Refit ``gate`` to the chunk's weighted ``targets`` on standardised
        ``Z`` and the expansions of the chunks before, and average it in;
        ``again`` and ``restart`` as for the experts' statistics."""
        total = float(targets.sum())
        if not again:
            self.n_steps += 1
            self.weight += total
            self._before = self._current
        # each iterate weighted by the inverse of its step (see averaged)
        iterate_weight = total / (total / self.weight) ** STEP_DECAY
        if not again:
            self.mean_weight += iterate_weight
            self._mean_before = self.mean
        if len(restart):  # a move: some experts' columns now stand for other rows
            self.mean_weight, self._mean_before = iterate_weight, None
        if sp.issparse(Z) or Z.shape[1] * targets.shape[1] > _NEWTON_MAX_PARAMS:
            gate.fit_standardized(Z, targets)
        else:
            self._fit(gate, Z, targets, total, restart)
        iterate = (np.asarray(gate.coef_, dtype=np.float64), np.asarray(gate.intercept_, float))
        self.mean = iterate
        if self._mean_before is not None:
            share = iterate_weight / self.mean_weight
            self.mean = tuple(
                old + share * (new - old)
                for old, new in zip(self._mean_before, iterate, strict=True)
            )
        return self

    def averaged(self, gate):
        """A copy of ``gate`` with the mean of its iterates since stepwise EM
        started, or since the last move (Polyak-Ruppert averaging).

        Each iterate minimises a sum whose newest chunk, weighted by the step,
        is a fresh sample of rows: the iterates scatter about the optimum
        (more so than the experts, solved from averaged statistics), by an
        amount that shrinks with the step; their mean, each weighted by the
        inverse of its step, scatters less (Cappé and Moulines, 2009, section
        2.3, average the iterates alike). E-steps use the iterate,
        predictions the mean."""
        averaged = copy.deepcopy(gate)
        averaged.coef_ = self.mean[0].astype(gate.coef_.dtype)
        averaged.intercept_ = self.mean[1].astype(gate.intercept_.dtype)
        return averaged

    def _fit(self, gate, Z, targets, total, restart):
        """The M-step of :meth:`update` by Newton steps; sets the chunk's expansion."""
        n_experts = targets.shape[1]
        step = (total / self.weight) ** STEP_DECAY
        memory = self._forget(self._before, restart, n_experts)
        Z1 = np.hstack([Z, np.ones((Z.shape[0], 1), dtype=Z.dtype)]).astype(np.float64)
        targets = np.asarray(targets, dtype=np.float64)
        row_weight = targets.sum(axis=1)
        if not hasattr(gate, "coef_") or gate.coef_.shape[1] != n_experts:
            gate.coef_, gate.intercept_ = np.zeros((Z.shape[1], n_experts)), np.zeros(n_experts)
        theta = np.vstack([gate.coef_, gate.intercept_]).astype(np.float64)  # (d + 1, K)
        # the penalty of the batch M-step on all rows seen, per unit weight
        # (for alpha="auto", the last one the batch fits chose)
        alpha = gate.current_alpha() / self.weight
        penalty = np.tile(intercept_free_penalty(Z.shape[1], alpha), n_experts)
        chunk_loss = gate._logit_loss(targets, row_weight)  # with any balance term

        def value_grad(theta):
            value, grad, proba = chunk_loss(Z1 @ theta)
            flat = theta.T.ravel()  # blocks by expert, as the Hessian's
            value, grad = value / total, (Z1.T @ grad).T.ravel() / total
            if memory is not None:
                hessian, rhs = memory
                value = (1 - step) * (0.5 * flat @ hessian @ flat - rhs @ flat) + step * value
                grad = (1 - step) * (hessian @ flat - rhs) + step * grad
            return value + 0.5 * flat @ (penalty * flat), grad + penalty * flat, proba

        value, grad, proba = value_grad(theta)
        for _ in range(gate.max_iter):
            if np.abs(grad).max() <= gate.tol:
                break
            hessian = _softmax_hessian(Z1, proba, row_weight) / total
            hessian = step * hessian if memory is None else step * hessian + (1 - step) * memory[0]
            hessian[np.diag_indices_from(hessian)] += penalty
            direction = scipy.linalg.cho_solve(_damped_cholesky(hessian), grad)
            direction = direction.reshape(n_experts, -1).T
            slope = float(grad @ direction.T.ravel())
            for _ in range(30):
                new = value_grad(theta - direction)
                if new[0] <= value - 1e-4 * slope:
                    break
                direction, slope = 0.5 * direction, 0.5 * slope
            else:
                break  # no decrease left at working precision
            theta = theta - direction
            value, grad, proba = new
        # the chunk's loss, expanded where this M-step leaves the gate
        _, grad, proba = chunk_loss(Z1 @ theta)
        hessian = _softmax_hessian(Z1, proba, row_weight) / total
        expansion = (hessian, hessian @ theta.T.ravel() - (Z1.T @ grad).T.ravel() / total)
        if memory is None:
            self._current = expansion
        else:
            self._current = tuple(
                (1 - step) * old + step * new for old, new in zip(memory, expansion, strict=True)
            )
        gate.coef_ = theta[:-1].astype(Z.dtype)
        # softmax ignores a shift shared by all logits: intercepts kept centred
        gate.intercept_ = (theta[-1] - theta[-1].mean()).astype(Z.dtype)
        gate.record_balance_penalty(Z, row_weight.astype(Z.dtype))

    @staticmethod
    def _forget(memory, restart, n_experts):
        """``memory`` without the terms of the experts in ``restart``."""
        if memory is None or not len(restart):
            return memory
        hessian, rhs = memory
        size = rhs.size // n_experts
        hessian = hessian.reshape(n_experts, size, n_experts, size).copy()
        rhs = rhs.reshape(n_experts, size).copy()
        for k in restart:
            hessian[k], hessian[:, :, k], rhs[k] = 0.0, 0.0, 0.0
        return hessian.reshape(n_experts * size, -1), rhs.ravel()
