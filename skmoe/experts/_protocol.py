"""The expert-set protocol: what the solvers ask of a set of K experts."""

from typing import Protocol


class ExpertSet(Protocol):
    """K experts fitted from one weight matrix and evaluated together.

    ``weights`` is (n_samples, K): the responsibilities times the sample
    weights. The built-in sets also take the fit's ``design`` (see
    :mod:`skmoe._design`), the standardised rows and their Gram matrices.
    A regression set gives ``predict`` (n, K), a classification set
    ``predict_proba`` (n, K, C). Optional: ``drop(experts)``, for
    ``expert_failure="drop"``; gradient training's sets add ``params``,
    ``forward``, ``backward``, ``penalty`` and ``reset_expert``.
    """

    def fit(self, X, y, weights, random_state=None, **design):
        """Refit every expert with its column of ``weights``; returns self."""

    def squared_norms(self):
        """(K,) squared norms of the penalised coefficients (zeros where none)."""

    def to_estimators(self):
        """The K fitted experts as scikit-learn estimators (``estimators_``)."""
