"""What every solver returns."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class FitResult:
    """One initialisation's fit: the fitted gate and experts, the likelihood's
    parameters (noise variances or None) and the record of the fit, which the
    estimator publishes as its fitted attributes.

    ``resp``, ``log_lik``, ``row_log_lik`` and ``distance`` are EM's last
    E-step, from which a merge-and-split move starts; other solvers leave
    them None.
    """

    gate: Any
    experts: Any
    params: Any
    converged: bool
    lower_bound: float
    lower_bounds: np.ndarray
    n_expert_restarts: int = 0
    n_objective_falls: int = 0
    n_merges: int = 0
    validation_scores: np.ndarray | None = None
    resp: Any = None
    log_lik: Any = None
    row_log_lik: Any = None
    distance: Callable | None = None
