"""Experts: the K models the gate chooses between.

Each expert set fits all K experts from one weight matrix (responsibilities
times sample weights) and evaluates all K at once; the solvers ask no more of
it than :class:`~skmoe.experts._protocol.ExpertSet` says:

- :class:`LinearExperts` and :class:`LogisticExperts` are the built-in,
  vectorised experts (batched ridge / logistic regressions);
- :class:`NetworkExperts` are the differentiable built-in experts of
  gradient training (linear, or with one hidden layer);
- :class:`EstimatorExperts` wraps arbitrary scikit-learn estimators.
"""

from ._estimators import EstimatorExperts
from ._linear import LinearExperts
from ._logistic import LogisticExperts
from ._networks import NetworkExperts

__all__ = ["EstimatorExperts", "LinearExperts", "LogisticExperts", "NetworkExperts"]
