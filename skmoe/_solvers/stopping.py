"""Early stopping: held-out rows scored after each iteration, and the best
state kept (``early_stopping``, for EM and gradient training alike)."""

import copy

import numpy as np

from .._em import e_step


class Best:
    """The best score so far, the iterations since it last rose by ``tol``,
    and (with ``keep``) a copy of the state it was scored on."""

    def __init__(self, keep):
        self.keep, self.score, self.state, self.no_change = keep, -np.inf, None, 0

    def update(self, score, tol, state):
        self.no_change = self.no_change + 1 if score < self.score + tol else 0
        if score > self.score:
            self.score = score
            if self.keep:
                self.state = copy.deepcopy(state)


def validation_score(likelihood, gate, experts, params, validation):
    """Weighted mean log-likelihood of the held-out rows ``validation``,
    ``(X, y, sample_weight)``, under the current model."""
    X, y, sample_weight = validation
    Z = gate.standardize(X)
    log_lik = likelihood.experts_log_lik(experts, X, y, params)
    row_log_lik = e_step(gate.log_proba_standardized(Z), log_lik)[1]
    return float(np.average(row_log_lik, weights=sample_weight))
