"""Stepwise online EM for the regressor's built-in linear experts.

After Cappé and Moulines (2009), "On-line expectation-maximization algorithm
for latent data models": each chunk of rows gets an E-step under the current
parameters; the experts' sufficient statistics (per unit of weight) move
towards the chunk's by a step ``t ** -STEP_DECAY`` at the ``t``-th chunk;
the M-step solves the experts from the running statistics. The gate has no
finite sufficient statistics, so it takes the batch M-step's few Newton steps
on each chunk, warm-started (a stochastic generalised M-step).

Written here because no library offers online EM for mixtures of experts.
"""

import numpy as np

from .experts._linear import _normal_equations

# Cappé and Moulines need 1/2 < decay <= 1; a smaller decay forgets the
# statistics of early chunks, made under worse parameters, sooner.
STEP_DECAY = 0.6


class OnlineStatistics:
    """Running per-unit-weight sufficient statistics of K linear experts.

    ``gram`` and ``rhs`` are the normal equations of ``x1 = [x - offset, 1]``
    with the offset fixed by the first chunk (its column means, 0 for sparse
    input), ``yy`` the weighted squares of ``y``; ``weight`` counts the rows'
    weight seen so far.
    """

    def __init__(self):
        self.offset = None
        self.n_steps = 0
        self.weight = 0.0
        self._before = self._current = None  # the statistics before and after the last chunk

    def update(self, X, y, weights, *, again=False):
        """Blend in the statistics of one chunk's weighted rows; ``again``
        replaces the last chunk's contribution (a refined E-step of the same
        chunk) instead of adding a new one."""
        total = weights.sum()
        self.offset, gram, rhs = _normal_equations(X, y, weights, offset=self.offset)
        chunk = (gram / total, rhs / total, (weights * (y**2)[:, None]).sum(axis=0) / total)
        if not again:
            self.n_steps += 1
            self.weight += total
            self._before = self._current
        # (1/t) ** decay at the t-th of equal chunks; by weight, a small chunk
        # moves the statistics less
        step = (total / self.weight) ** STEP_DECAY
        if self._before is None:
            self._current = chunk
        else:
            self._current = tuple(
                (1 - step) * old + step * new for old, new in zip(self._before, chunk, strict=True)
            )
        self.gram, self.rhs, self.yy = self._current
        return self

    def residual_sum_of_squares(self, theta):
        """Each expert's weighted residual sum of squares at ``theta`` (K, d + 1),
        in totals over the rows seen."""
        quadratic = np.einsum("ki,kij,kj->k", theta, self.gram, theta)
        per_weight = self.yy - 2 * np.einsum("ki,ki->k", theta, self.rhs) + quadratic
        return np.maximum(per_weight, 0.0) * self.weight
