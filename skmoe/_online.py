"""Stepwise online EM for the regressor's built-in linear experts.

After Cappé and Moulines (2009), "On-line expectation-maximization algorithm
for latent data models": each chunk of rows gets an E-step under the current
parameters; the experts' sufficient statistics (per unit of weight) move
towards the chunk's by a step ``t ** -STEP_DECAY`` at the ``t``-th chunk;
the M-step solves the experts from the running statistics. The gate has no
finite sufficient statistics, so it takes the batch M-step's few Newton steps
on each chunk, warm-started (a stochastic generalised M-step).

The running statistics are float64 whatever the input's type: they are sums
over many chunks. The experts solved from them take the chunk's type.

Written here because no library offers online EM for mixtures of experts.
"""

import numpy as np
import scipy.sparse as sp

from .experts._linear import _normal_equations

# Cappé and Moulines need 1/2 < decay <= 1; a smaller decay forgets the
# statistics of early chunks, made under worse parameters, sooner.
STEP_DECAY = 0.6


class _RunningAverage:
    """Statistics per unit of weight, each chunk's blended in by a step
    ``(chunk weight / weight seen) ** STEP_DECAY``: ``(1/t) ** decay`` at the
    ``t``-th of equal chunks, and a small chunk moves them less."""

    def __init__(self):
        self.n_steps = 0
        self.weight = 0.0
        self._before = self._current = None  # the statistics before and after the last chunk

    def _blend(self, chunk, total, again):
        """Blend in ``chunk`` (sums over ``total`` weight); ``again`` replaces
        the last chunk's contribution (a refined E-step of the same chunk)
        instead of adding a new one."""
        chunk = tuple(value / total for value in chunk)
        if not again:
            self.n_steps += 1
            self.weight += total
            self._before = self._current
        step = (total / self.weight) ** STEP_DECAY
        if self._before is None:
            self._current = chunk
        else:
            self._current = tuple(
                (1 - step) * old + step * new for old, new in zip(self._before, chunk, strict=True)
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

    def update(self, experts, X, y, weights, *, again=False):
        """Blend in one chunk's weighted rows and solve ``experts`` from the
        running statistics."""
        self.offset, gram, rhs = _normal_equations(X, y, weights, offset=self.offset)
        yy = (weights * (y**2)[:, None]).sum(axis=0, dtype=np.float64)
        total = weights.sum(dtype=np.float64)
        self.gram, self.rhs, self.yy = self._blend((gram, rhs, yy), total, again)
        experts.solve(self.offset, self.gram * self.weight, self.rhs * self.weight, dtype=X.dtype)
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

    def update(self, experts, X, y, weights, *, again=False):
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
        self.hessian, self.rhs = self._blend((hessian, rhs), total, again)
        experts.solve(self.hessian * self.weight, self.rhs * self.weight, dtype=X.dtype)
        return self
