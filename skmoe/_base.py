"""Base class of the mixture-of-experts estimators: parameters and the EM loop.

The loop follows :mod:`sklearn.mixture._base`: validate, then ``n_init`` restarts,
each alternating M-steps and E-steps until the objective changes by less than
``tol``, keep the best, warn if it did not converge. Subclasses supply the
expert likelihood (Gaussian noise or class probabilities) through small hooks.
"""

import copy
import functools
import warnings
from abc import ABCMeta, abstractmethod
from math import prod
from numbers import Integral, Real
from time import time

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, clone, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state, get_tags
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from ._acceleration import em_iterate, set_em_iterate, squarem_point
from ._backend import (
    all_finite,
    check_device_finite,
    get_namespace,
    is_cupy_array,
    require_cupy,
    to_host,
    to_numpy,
)
from ._chunks import in_row_chunks
from ._compat import (
    Interval,
    StrOptions,
    _check_feature_names,
    _check_n_features,
    _check_sample_weight,
    _fit_context,
)
from ._design import Design
from ._em import (
    MAX_RESTARTS_PER_EXPERT,
    check_init_resp,
    e_step,
    idle_expert,
    kmeans_labels,
    posteriors,
    redundant_pair,
    restart_experts,
    routing_shares,
    split_worst_expert,
)
from ._gradient import gradient_run
from ._math import column_sum, log_softmax_rows, weighted_sum
from ._online import OnlineGate, OnlineState, removal_costs, significantly_better, warm_up_rows
from ._rows import distinct_rows
from ._version import __version__
from ._warn import warn
from .exceptions import InconsistentVersionWarning
from .experts import EstimatorExperts
from .experts._estimators import ExpertFitError, set_random_states, weight_parameter
from .gates import HierarchicalGate, SoftmaxGate
from .gates._balance import BALANCE_LOSSES

_DEFAULT_N_EXPERTS = 4

# EM rounds on each chunk in partial_fit: each refines the chunk's E-step
# under the parameters the previous one gave. Rounds until the chunk's
# log-likelihood settled did not bring the benchmark closer to the batch fit
# (benchmarks/online.py); a move's trial, which starts from a split, runs so.
_ONLINE_STEPS_PER_CHUNK = 3

# A fall of the objective by more than this, relative, is counted in
# n_objective_falls_; smaller ones are rounding.
_FALL_RTOL = 1e-9

# Newton steps of the gate per M-step. EM needs each M-step to improve the gate,
# not to solve it: a few warm-started steps do that at a fraction of the cost,
# and the gate converges along with the experts (a generalised EM). Two
# truncated steps reached the scores of three formed-Hessian ones (within
# 0.002 R^2, 3 seeds of 3 sets) at 0.55-0.9x the fit time; one step stopped
# EM earlier, 0.002-0.004 lower (benchmarks/peers.py sets).
_GATE_STEPS_PER_M_STEP = 2


def _nested_kmeans(Z, sample_weight, branching, rng):
    """Leaf labels from k-means, level by level: each cluster of one level is
    split into ``branching[l]`` clusters, so the partition fits the tree of
    gates (one level: plain k-means)."""
    xp = get_namespace(Z)
    labels = xp.zeros(Z.shape[0], dtype=int)
    for n_children in branching:
        split = xp.empty_like(labels)
        for parent in range(int(labels.max()) + 1):
            rows = xp.flatnonzero(labels == parent)
            children = xp.arange(rows.size) % n_children  # too few rows to cluster
            if rows.size >= n_children:
                children = kmeans_labels(Z[rows], sample_weight[rows], n_children, rng)
            split[rows] = parent * n_children + children
        labels = split
    return labels


def check_weights(sample_weight, n_samples):
    """``sample_weight`` as validated float64 NumPy weights of ``n_samples``
    rows (ones if None): non-negative, not all zero."""
    sample_weight = _check_sample_weight(
        None if sample_weight is None else to_numpy(sample_weight),
        np.empty((n_samples, 0)),  # only its length counts
        dtype=np.float64,
    )
    if np.any(sample_weight < 0):
        raise ValueError("sample_weight must be non-negative.")
    if not sample_weight.sum() > 0:
        raise ValueError("sample_weight must not be all zero.")
    return sample_weight


def keeps_state_on_failure(method):
    """Decorate a fitting method so that, if it raises or is interrupted, the
    estimator's attributes are put back as they were: never a half-fitted
    estimator. Failed experts are reported in their own error's type."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        previous = dict(self.__dict__)
        try:
            return method(self, *args, **kwargs)
        except BaseException as error:
            self.__dict__.clear()
            self.__dict__.update(previous)
            if isinstance(error, ExpertFitError):
                raise error.as_raised() from error.__cause__
            raise

    return wrapper


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


def _to_device(validated):
    """Validated host data, ``X`` or ``(X, y)``, moved to the GPU; ``y`` takes
    ``X``'s floating type (the GPU fits regression only)."""
    cupy = require_cupy()
    X, y = validated if isinstance(validated, tuple) else (validated, None)
    if sp.issparse(X):
        raise TypeError("device='cuda' takes dense X; sparse input is fitted on the CPU.")
    X = cupy.asarray(X)
    return X if y is None else (X, cupy.asarray(y, dtype=X.dtype))


def _distinct_fit_rows(X, y, sample_weight, init_resp):
    """The rows a fit sees: each distinct ``(x, y)`` of positive weight once,
    with its copies' summed weight (see :mod:`skmoe._rows`), and the initial
    responsibilities given, each row's the weighted mean of its copies'."""
    distinct = distinct_rows(X, y, sample_weight)
    if init_resp is not None:
        weight = to_numpy(sample_weight[distinct.positive])[:, None]
        summed = np.zeros((len(distinct.rows), init_resp.shape[1]))
        np.add.at(summed, to_numpy(distinct.group), init_resp[to_numpy(distinct.positive)] * weight)
        init_resp = summed / summed.sum(axis=1, keepdims=True)
    rows = distinct.rows
    if rows.size < X.shape[0] or not bool((rows[1:] > rows[:-1]).all()):  # a subset or reordered
        X, y = X[rows], y[rows]
    return X, y, distinct.weight, init_resp


def _branch(groups, expert, resp):
    """The experts of ``expert``'s branch, and a mask of the rows they own
    (None when there is one branch: all rows)."""
    siblings = next(g for g in groups if expert in g)
    if len(groups) == 1:
        return siblings, None
    return siblings, np.isin(to_numpy(resp.argmax(axis=1)), siblings)


class BaseMixtureOfExperts(BaseEstimator, metaclass=ABCMeta):
    """Shared parameters, EM fit and gate access of the mixture estimators.

    Do not use directly: use :class:`MixtureOfExpertsRegressor` or
    :class:`MixtureOfExpertsClassifier`.
    """

    _parameter_constraints: dict = {
        "estimator": [list, None],  # subclasses add the methods an expert needs
        "n_experts": [Interval(Integral, 1, None, closed="left"), tuple, None],
        "top_k": [Interval(Integral, 1, None, closed="left"), None],
        "gate_noise": ["boolean"],
        "gate_alpha": [Interval(Real, 0, None, closed="left")],
        "balance_loss": [StrOptions(set(BALANCE_LOSSES)), None],
        "balance_coef": [Interval(Real, 0, None, closed="left")],
        "min_expert_load": [Interval(Real, 0, 1, closed="left")],
        "expert_alpha": [Interval(Real, 0, None, closed="left")],
        "expert_hidden_units": [Interval(Integral, 1, None, closed="left"), None],
        "solver": [StrOptions({"em", "gradient"})],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "init": [StrOptions({"kmeans", "random"}), "array-like"],
        "warm_start": ["boolean"],
        "n_jobs": [Integral, None],
        "expert_failure": [StrOptions({"raise", "drop"})],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "verbose_interval": [Interval(Integral, 1, None, closed="left")],
        "device": [StrOptions({"cpu", "cuda"})],
    }

    @abstractmethod
    def __init__(
        self,
        estimator=None,
        *,
        n_experts=None,
        top_k=None,
        gate_noise=False,
        gate_alpha=0.01,
        balance_loss=None,
        balance_coef=0.01,
        min_expert_load=1e-3,
        expert_alpha=1.0,
        expert_hidden_units=None,
        solver="em",
        max_iter=100,
        tol=1e-3,
        learning_rate_init=0.05,
        batch_size="auto",
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        n_init=1,
        init="kmeans",
        warm_start=False,
        n_jobs=None,
        expert_failure="raise",
        random_state=None,
        verbose=0,
        verbose_interval=10,
        device="cpu",
    ):
        self.estimator = estimator
        self.n_experts = n_experts
        self.top_k = top_k
        self.gate_noise = gate_noise
        self.gate_alpha = gate_alpha
        self.balance_loss = balance_loss
        self.balance_coef = balance_coef
        self.min_expert_load = min_expert_load
        self.expert_alpha = expert_alpha
        self.expert_hidden_units = expert_hidden_units
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.learning_rate_init = learning_rate_init
        self.batch_size = batch_size
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.n_init = n_init
        self.init = init
        self.warm_start = warm_start
        self.n_jobs = n_jobs
        self.expert_failure = expert_failure
        self.random_state = random_state
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.device = device

    # ------------------------------------------------------------------ hooks
    _required_methods = ("fit", "predict")

    @abstractmethod
    def _prepare_target(self, y, sample_weight):
        """Validate and encode ``y``; set target attributes such as ``classes_``."""

    @abstractmethod
    def _make_likelihood(self, y, sample_weight):
        """The experts' likelihood (see :mod:`skmoe._likelihood`), from the
        encoded target of the distinct rows and their weights."""

    @abstractmethod
    def _encode_target(self, y):
        """``y`` in the form the likelihood takes (float targets, class indices)."""

    def _set_params_attributes(self, params):
        """Store the likelihood's parameters as fitted attributes."""

    def _get_params_attributes(self):
        """Inverse of ``_set_params_attributes``, for warm starts."""
        return None

    def _penalty_alpha(self):
        """The built-in experts' L2 penalty that EM's objective holds: none for
        wrapped experts, and none for gradient training's network experts,
        which carry their own outside the likelihood."""
        return self.expert_alpha if self.estimator is None and self.solver == "em" else 0.0

    # ------------------------------------------------------------------ setup
    def _estimator_list(self):
        """The user's estimators as a list (empty for built-in experts)."""
        if self.estimator is None:
            return []
        return self.estimator if isinstance(self.estimator, list) else [self.estimator]

    def _check_estimator_list(self):
        if isinstance(self.estimator, list) and not self.estimator:
            raise ValueError("estimator is an empty list; give at least one expert.")
        for i, est in enumerate(self._estimator_list()):
            missing = [m for m in self._required_methods if not hasattr(est, m)]
            if missing:
                raise TypeError(
                    f"estimator[{i}] ({est!r}) has no {' or '.join(missing)} method; every "
                    f"expert must implement {', '.join(self._required_methods)}."
                )

    def _resolved_n_experts(self):
        """The number of experts (leaves of a hierarchy), checked against the
        estimators given."""
        if isinstance(self.n_experts, tuple):
            if not self.n_experts or not all(
                isinstance(b, Integral) and not isinstance(b, bool) and b >= 1
                for b in self.n_experts
            ):
                raise ValueError(
                    "n_experts as a tuple gives the branching of each level of a "
                    f"hierarchy: positive integers, at least one; got {self.n_experts!r}."
                )
        n_leaves = prod(self.n_experts) if isinstance(self.n_experts, tuple) else self.n_experts
        if isinstance(self.estimator, list):
            if n_leaves is not None and n_leaves != len(self.estimator):
                raise ValueError(
                    f"n_experts={self.n_experts} does not match the {len(self.estimator)} "
                    "estimators given; leave n_experts=None with a list of estimators."
                )
            return len(self.estimator)
        return n_leaves or _DEFAULT_N_EXPERTS

    def _sibling_groups(self, n_experts):
        """Groups of experts that share a parent gate: all of them, or in a
        hierarchy the leaves of each last-level branch."""
        if isinstance(self.n_experts, tuple):
            return list(np.arange(n_experts).reshape(-1, self.n_experts[-1]))
        return [np.arange(n_experts)]

    def _gate_options(self):
        """The gate's routing and balancing, set in one place for fit and
        partial_fit. A ``top_k`` of ``n_experts`` or more routes every row to
        every expert: the gate is dense."""
        names = ("top_k", "balance_loss", "balance_coef")
        return {name: getattr(self, name) for name in names}

    def _make_gate(self):
        if isinstance(self.n_experts, tuple):
            return HierarchicalGate(
                self.n_experts, alpha=self.gate_alpha, max_iter=_GATE_STEPS_PER_M_STEP
            )
        return SoftmaxGate(self.gate_alpha, max_iter=_GATE_STEPS_PER_M_STEP)

    def _make_experts(self, n_experts, rng, scaler):
        if self.estimator is None and self.solver == "gradient":
            experts = self._likelihood.network_experts(
                n_experts, scaler, hidden_units=self.expert_hidden_units, alpha=self.expert_alpha
            )
            return experts.init_params(self.n_features_in_, rng)
        if self.estimator is None:
            return self._likelihood.builtin_experts(n_experts, self.expert_alpha)
        templates = self._estimator_list()
        if len(templates) == 1:
            templates = templates * n_experts
        return EstimatorExperts(
            [set_random_states(clone(t), rng) for t in templates],
            n_classes=len(self.classes_) if is_classifier(self) else None,
            n_jobs=self.n_jobs,
        )

    def _say_which_experts_are_resampled(self):
        """Warn, once per fit, of the experts whose fit takes no row weights:
        each M-step fits them on a weighted bootstrap of their rows."""
        templates = self._estimator_list()  # empty for the built-in experts
        resampled = sorted({type(t).__name__ for t in templates if weight_parameter(t) is None})
        if resampled:
            warn(
                f"The fit of {', '.join(resampled)} takes no sample_weight: each M-step "
                "fits such an expert on a weighted bootstrap of its rows (drawn from "
                "random_state) instead of weighting them. An estimator whose fit takes "
                "sample_weight (or a Pipeline whose last step does) is fitted exactly."
            )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # the gate and the built-in experts take sparse input, never NaN;
        # wrapped experts decide for themselves
        expert_tags = [get_tags(est).input_tags for est in self._estimator_list()]
        tags.input_tags.sparse = all(t.sparse for t in expert_tags)
        tags.input_tags.allow_nan = bool(expert_tags) and all(t.allow_nan for t in expert_tags)
        return tags

    def _validate_data(self, X, y="no_validation", *, reset, device_finite_check=True):
        """validate_data with what the gate and the experts accept; on the GPU
        (``device="cuda"`` or CuPy input at fit, a GPU fit at predict) the
        same checks, with the arrays moved to the device. A caller that finds
        non-finite rows in its own results may skip the pass over CuPy X."""
        on_device = (self.device == "cuda" or is_cupy_array(X)) if reset else self._on_device
        if is_cupy_array(X):
            if on_device:
                return self._validate_device_data(
                    X, y, reset=reset, finite_check=device_finite_check
                )
            X = to_numpy(X)  # a CPU fit predicts on the CPU
        result = validate_data(
            self,
            X,
            y,
            accept_sparse=["csr", "csc"],
            dtype=[np.float64, np.float32],
            ensure_all_finite="allow-nan" if get_tags(self).input_tags.allow_nan else True,
            reset=reset,
        )
        if isinstance(result, tuple) and not is_classifier(self):
            # a regression target takes X's floating type, as Ridge's does
            # (checked again: a finite float64 can round to float32's infinity)
            X_valid, y_valid = result
            y_valid = check_array(y_valid, dtype=X_valid.dtype, ensure_2d=False, input_name="y")
            result = X_valid, y_valid
        return _to_device(result) if on_device else result

    def _validate_device_data(self, X, y, *, reset, finite_check):
        """The checks of ``_validate_data`` for CuPy input, run on the device."""
        cupy = require_cupy()
        _check_feature_names(self, X, reset=reset)
        if X.ndim != 2:
            raise ValueError(f"Expected a 2-dimensional array, got {X.ndim} dimension(s).")
        if X.dtype not in (cupy.float32, cupy.float64):
            X = X.astype(cupy.float64)
        if finite_check:
            check_device_finite(X)
        _check_n_features(self, X, reset=reset)
        if isinstance(y, str) and y == "no_validation":
            return X
        y = cupy.asarray(y, dtype=X.dtype)
        if y.shape != (X.shape[0],):
            raise ValueError(f"y must have shape ({X.shape[0]},), got {y.shape}.")
        if not bool(cupy.isfinite(y).all()):
            raise ValueError("Input y contains NaN or infinity.")
        return X, y

    def _check_device_options(self):
        """What runs on the GPU so far: EM over the built-in regression experts."""
        hierarchy = isinstance(self.n_experts, tuple)
        if is_classifier(self) or self.estimator is not None or self.solver != "em" or hierarchy:
            raise ValueError(
                "device='cuda' supports MixtureOfExpertsRegressor with the built-in "
                "experts (estimator=None), one level of gating and solver='em' so far; "
                "use device='cpu'."
            )

    def _initial_resp(self, Z, sample_weight, n_experts, rng, init_resp=None):
        n_samples = Z.shape[0]
        xp = get_namespace(Z)
        if isinstance(self.init, str) and self.init == "random":
            resp = rng.uniform(size=(n_samples, n_experts))
            return xp.asarray(resp / resp.sum(axis=1, keepdims=True), dtype=Z.dtype)
        if isinstance(self.init, str):  # "kmeans" on the gate's standardised input
            branching = self.n_experts if isinstance(self.n_experts, tuple) else (n_experts,)
            labels = _nested_kmeans(Z, sample_weight, branching, rng)
            return xp.eye(n_experts, dtype=Z.dtype)[labels]
        if init_resp is None:
            init_resp = check_init_resp(self.init, n_samples, n_experts)
        return xp.asarray(init_resp, dtype=Z.dtype)

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=False)
    @keeps_state_on_failure
    def fit(self, X, y, sample_weight=None):
        """Fit the mixture, by EM or by gradient training (``solver``).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data. Float32 X is fitted in float32 (the sums over
            its rows in float64); other types in float64.
        y : array-like of shape (n_samples,)
            Target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative row weights, not all zero; they multiply the
            responsibilities given to each expert.

        Returns
        -------
        self : object
            The fitted mixture.
        """
        if self.device == "cuda" or is_cupy_array(X):
            self._check_device_options()
        X, y = self._validate_data(X, y, reset=True)
        self._on_device = is_cupy_array(X)
        # the weights take X's floating type, so that the (n, K) arrays they
        # multiply stay in it
        sample_weight = get_namespace(X).asarray(
            check_weights(sample_weight, X.shape[0]), dtype=X.dtype
        )
        self._check_estimator_list()
        y = self._prepare_target(y, sample_weight)
        n_experts = self._resolved_n_experts()
        if n_experts > X.shape[0]:
            raise ValueError(
                f"n_experts={n_experts} must be <= n_samples={X.shape[0]}: every expert "
                "needs rows to fit."
            )
        n_weighted = int(np.count_nonzero(to_numpy(sample_weight)))
        if n_experts > n_weighted:
            raise ValueError(
                f"n_experts={n_experts} must be <= the {n_weighted} rows with positive "
                "sample_weight: every expert needs rows to fit."
            )
        self._check_solver_options()
        init_resp = None
        if not isinstance(self.init, str):
            init_resp = check_init_resp(self.init, X.shape[0], n_experts)
        X, y, sample_weight, init_resp = _distinct_fit_rows(X, y, sample_weight, init_resp)
        self._likelihood = self._make_likelihood(y, sample_weight)
        # with unit weights, EM skips multiplying its (n, K) arrays by them
        self._unit_weights = bool(get_namespace(X).all(sample_weight == 1))
        validation = None
        if self.early_stopping:
            arrays = (X, y, sample_weight) + (() if init_resp is None else (init_resp,))
            split = train_test_split(
                *arrays,
                test_size=self.validation_fraction,
                random_state=self.random_state,
                stratify=y if is_classifier(self) else None,
            )
            X, y, sample_weight = split[0:6:2]
            validation = split[1:6:2]
            init_resp = None if init_resp is None else split[6]
        self._fit_mixture(X, y, sample_weight, n_experts, validation, init_resp)
        return self

    def _check_solver_options(self):
        """Refuse the combinations of options that have no meaning."""
        if self.solver == "em":
            for name in ("gate_noise", "early_stopping", "expert_hidden_units"):
                if getattr(self, name) not in (False, None):
                    raise ValueError(
                        f"{name}={getattr(self, name)!r} needs solver='gradient': EM has "
                        "no gradient step that could learn it."
                    )
        if self.solver == "gradient" and isinstance(self.n_experts, tuple):
            raise ValueError(
                f"n_experts={self.n_experts!r} builds a hierarchy of gates, which is "
                "trained by EM only; use solver='em'."
            )
        if self.gate_noise and self.top_k is None:
            raise ValueError(
                "gate_noise=True needs top_k: the noise decides which experts enter "
                "each row's top k, and a dense gate has no such choice."
            )
        if self.expert_failure == "drop" and (
            self.solver != "em" or isinstance(self.n_experts, tuple)
        ):
            raise ValueError(
                "expert_failure='drop' needs solver='em' and one level of gating: "
                "only there can the gate be renormalised over the remaining experts."
            )
        if self.expert_hidden_units is not None and self.estimator is not None:
            raise ValueError(
                "expert_hidden_units sets the built-in network experts; it cannot apply "
                "to the estimators given."
            )

    def _fit_mixture(self, X, y, sample_weight, n_experts, validation, init_resp):
        self._online = None  # fit starts anew; partial_fit then continues from it
        rng = check_random_state(self.random_state)
        warm = self.warm_start and hasattr(self, "converged_")
        if warm and len(self.estimators_) != n_experts:
            raise ValueError(
                f"warm_start continues the previous fit's {len(self.estimators_)} experts; "
                f"got n_experts={n_experts}. Set warm_start=False to start anew."
            )
        self._say_which_experts_are_resampled()
        best = None
        for init in range(1 if warm else self.n_init):
            if warm:
                # continue from a copy, so a failing fit leaves the fitted state intact
                gate, experts = copy.deepcopy((self.gate_, self._experts))
                Z = gate.standardize(X)
                log_lik = self._likelihood.log_lik(
                    self._likelihood.outputs(experts, X), y, self._get_params_attributes()
                )
                resp = posteriors(gate, Z, log_lik)[0]
            else:
                gate = self._make_gate()
                gate.init_scaler(X, sample_weight)
                experts = self._make_experts(n_experts, rng, gate.scaler_)
                Z = gate.standardize(X)
                resp = self._initial_resp(Z, sample_weight, n_experts, rng, init_resp)
                if self.solver == "gradient":
                    # EM's first gate M-step: a gate leaning towards the initial
                    # partition, soft enough for the gradient to move it
                    gate.fit_standardized(Z, resp * sample_weight[:, None])
            gate.set_params(**self._gate_options())
            self._print_init_start(init)
            if self.solver == "em":
                result = self._em_loop(gate, experts, X, Z, y, sample_weight, resp, rng)
            else:
                result = gradient_run(
                    self, gate, experts, X, Z, y, sample_weight, resp, rng, validation
                )
            self._print_init_end(result["lower_bound"], result["converged"])
            if best is None or result["lower_bound"] > best["lower_bound"]:
                best = result
        if not best["converged"]:
            warn(
                "Best performing initialization did not converge. Try different init "
                "parameters, or increase max_iter, tol, or check for degenerate data.",
                ConvergenceWarning,
            )
        self.gate_, self._experts = best["gate"], best["experts"]
        self._set_params_attributes(best["params"])
        self.estimators_ = self._experts.to_estimators()
        self.n_iter_ = len(best["lower_bounds"])
        self.converged_ = best["converged"]
        self.lower_bound_ = best["lower_bound"]
        self.lower_bounds_ = best["lower_bounds"]
        self.n_expert_restarts_ = best["n_expert_restarts"]
        self.n_objective_falls_ = best["n_objective_falls"]
        self.dropped_experts_ = sorted(getattr(best["experts"], "dropped_", []))
        self.n_merges_ = best["n_merges"]
        self.validation_scores_ = best.get("validation_scores")
        self.expert_load_, self.expert_importance_ = routing_shares(
            self.gate_.log_proba_standardized(Z), sample_weight
        )

    def _em_loop(self, gate, experts, X, Z, y, sample_weight, resp, rng):
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
        design = Design(Z, gate.scaler_, n_experts=resp.shape[1])
        run = self._em_run(gate, experts, X, design, y, sample_weight, resp, rng)
        idle_tried = set()
        for _ in range(resp.shape[1]):
            groups = self._sibling_groups(run["resp"].shape[1])  # fewer, if experts were dropped
            pair = redundant_pair(run["distance"], run["resp"], sample_weight, groups)
            if pair is None and len(groups) > 1:
                idle = idle_expert(run["resp"], sample_weight, groups, exclude=idle_tried)
                pair = None if idle is None else (None, idle)
            if pair is None:
                break
            keep, free = pair
            siblings, rows = _branch(groups, free, run["resp"])
            merged = run["resp"].copy()
            if keep is not None:
                merged[:, keep] += merged[:, free]
            merged[:, free] = 0.0  # an idle expert's few rows go to the next E-step
            # two ways to re-use the freed expert: on half of the worst expert's
            # rows, else on the worst-fitted rows of the whole mixture
            # (each start made only when its trial runs, and a failed trial let go
            # before the next: on the GPU, memory holds few copies of the rows)
            split = functools.partial(
                split_worst_expert, merged, free, Z, run["log_lik"], sample_weight, rng, siblings
            )
            restart = functools.partial(
                restart_experts, merged, [free], sample_weight, run["row_log_lik"], rng, rows
            )
            what = f"idle expert {free}" if keep is None else f"expert {free} merged into {keep}"
            for how, start in (
                ("restarted on half the worst expert's rows", split),
                ("restarted on the worst-fitted rows", restart),
            ):
                trial, start_resp = None, start()
                if start_resp is None:
                    continue
                self._print_move_start(f"{what}, {how}")
                trial_gate, trial_experts = copy.deepcopy((run["gate"], run["experts"]))
                trial = self._em_run(
                    trial_gate,
                    trial_experts,
                    X,
                    design,
                    y,
                    sample_weight,
                    start_resp,
                    rng,
                    row_log_lik=run["row_log_lik"],
                )
                # a trial that dropped a failing expert is kept whatever its
                # objective: the expert failed, and the fit ends without it.
                # Else it must gain more than tol: EM stops within about tol
                # of where it would settle, so a smaller gain is no gain (on
                # 14k rows of wages, K=8, the last four of eight moves kept
                # gained 7e-5 to 8e-4 and cost 40% of the fit)
                dropped = _n_dropped(trial["experts"]) > _n_dropped(run["experts"])
                kept = dropped or trial["lower_bound"] > run["lower_bound"] + self.tol
                self._print_move_end(kept, trial["lower_bound"], run["lower_bound"])
                if kept:
                    break
            else:
                if keep is not None:
                    break
                idle_tried.add(free)  # a failed idle move: try the next idle expert
                continue
            trial["lower_bounds"] = np.concatenate([run["lower_bounds"], trial["lower_bounds"]])
            trial["n_expert_restarts"] += run["n_expert_restarts"]
            trial["n_objective_falls"] += run["n_objective_falls"]
            trial["n_merges"] = run["n_merges"] + 1
            run = trial
        return run

    def _em_run(self, gate, experts, X, design, y, sample_weight, resp, rng, row_log_lik=None):
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
        restarts = np.zeros(resp.shape[1], dtype=int)
        lower_bound, lower_bounds, converged, gate_resp = -np.inf, [], False, resp
        # wrapped experts' fits need not maximise their weighted likelihood
        # (a tree's greedy splits), so the objective can fall: EM has then
        # converged once n_iter_no_change iterations have not raised its best
        exact = self.estimator is None
        falls, best, stale = 0, -np.inf, 0
        # SQUAREM's iterates since the last restart or extrapolation
        path, n_iter = [], 0
        while n_iter < self.max_iter:
            resp, dead = self._restart_dead_experts(resp, sample_weight, restarts, row_log_lik, rng)
            gate_resp = resp if dead.size else gate_resp
            # the last step's (n, K) arrays let go before the next step makes
            # its own: on the GPU, memory holds only so many of them
            outputs = log_lik = None
            step, kept = self._em_step_dropping(
                gate, experts, X, design, y, sample_weight, resp, gate_resp, rng
            )
            n_iter += 1
            outputs, params, log_lik, resp, gate_resp, row_log_lik = step
            restarts = restarts[kept]
            previous = lower_bound
            lower_bound = self._em_objective(gate, experts, params, row_log_lik, sample_weight)
            lower_bounds.append(lower_bound)
            self._print_iter_end(lower_bound, lower_bound - previous)
            if dead.size:
                path = []
                continue  # a restart may lower the objective: no judgement on it
            falls += bool(previous - lower_bound > _FALL_RTOL * abs(previous))
            if exact:
                converged = abs(lower_bound - previous) < self.tol
            else:
                risen = lower_bound > best + self.tol
                best, stale = (lower_bound, 0) if risen else (best, stale + 1)
                converged = stale >= self.n_iter_no_change
            if converged:
                break
            if exact:
                path.append(self._em_iterate(gate, experts, params))
            # a full path is extrapolated, and the next one starts from the
            # state kept: its last iterate, or the trial's
            point, path = (squarem_point(*path), path[-1:]) if len(path) == 3 else (None, path)
            if point is not None and n_iter < self.max_iter:
                n_iter += 1
                trial = self._extrapolated_step(
                    point, lower_bound, gate, experts, X, design, y, sample_weight, rng
                )
                if trial is not None:
                    previous, (gate, experts, step, lower_bound) = lower_bound, trial
                    outputs, params, log_lik, resp, gate_resp, row_log_lik = step
                    lower_bounds.append(lower_bound)
                    self._print_iter_end(lower_bound, lower_bound - previous)
                    path = [self._em_iterate(gate, experts, params)]
        return dict(
            gate=gate,
            experts=experts,
            params=params,
            resp=resp,
            log_lik=log_lik,
            row_log_lik=row_log_lik,
            distance=lambda a, b: self._likelihood.distance(outputs, params, a, b),
            converged=converged,
            lower_bound=lower_bound,
            lower_bounds=np.asarray(lower_bounds),
            n_expert_restarts=int(restarts.sum()),
            n_objective_falls=falls,
            n_merges=0,
        )

    def _restart_dead_experts(self, resp, sample_weight, restarts, row_log_lik, rng):
        """Restart (see :func:`~skmoe._em.restart_experts`) each expert whose
        load is below ``min_expert_load``, at most ``MAX_RESTARTS_PER_EXPERT``
        times each (counted in ``restarts``). Returns the responsibilities and
        the experts restarted."""
        mass = to_numpy(sample_weight @ resp) / float(sample_weight.sum())
        dead = np.flatnonzero((mass < self.min_expert_load) & (restarts < MAX_RESTARTS_PER_EXPERT))
        # restarts are part of EM, not a fault: counted in
        # n_expert_restarts_ and printed at verbose, never warned of (more
        # experts than the data has regimes leave some idle, by design)
        self._print_restarts(dead)
        for k in dead:
            rows = _branch(self._sibling_groups(len(mass)), k, resp)[1]
            resp = restart_experts(resp, [k], sample_weight, row_log_lik, rng, rows)
            restarts[k] += 1
        return resp, dead

    def _em_objective(self, gate, experts, params, row_log_lik, sample_weight):
        """EM's objective: the weighted mean log-likelihood less the penalties."""
        penalty = float(gate.penalty() + self._likelihood.penalty(experts, params))
        return (weighted_sum(sample_weight, row_log_lik) - penalty) / float(sample_weight.sum())

    def _em_iterate(self, gate, experts, params):
        """The parameters SQUAREM moves (see :func:`~skmoe._acceleration.em_iterate`)."""
        return em_iterate(
            gate, experts, self._likelihood.params_arrays(params), self._likelihood.unit
        )

    def _extrapolated_step(self, point, bound, gate, experts, X, design, y, sample_weight, rng):
        """SQUAREM's iteration: EM from ``point``, the extrapolation of three
        iterates, on copies of ``gate`` and ``experts``. Returns the copies, the
        step's results and its objective where that beats ``bound``, else None
        (and where the point leaves a row impossible)."""
        gate, experts = copy.deepcopy((gate, experts))
        params = self._likelihood.params_from_arrays(
            set_em_iterate(point, gate, experts, self._likelihood.unit)
        )
        log_lik = self._likelihood.log_lik(self._likelihood.outputs(experts, X), y, params)
        resp, gate_resp, row_log_lik = posteriors(gate, design.Z, log_lik)
        del log_lik
        if not all_finite(row_log_lik):
            return None
        step = self._em_step(gate, experts, X, design, y, sample_weight, resp, gate_resp, rng)
        objective = self._em_objective(gate, experts, step[1], step[-1], sample_weight)
        return (gate, experts, step, objective) if objective > bound else None

    def _em_step_dropping(self, gate, experts, X, design, y, sample_weight, resp, gate_resp, rng):
        """:meth:`_em_step`; with ``expert_failure="drop"``, experts whose fit
        or predict fails are dropped and the step taken again without them.
        Returns the step's results and the indices of the experts kept."""
        kept = np.arange(resp.shape[1])
        while True:
            try:
                step = self._em_step(
                    gate, experts, X, design, y, sample_weight, resp, gate_resp, rng
                )
                return step, kept
            except ExpertFitError as failure:
                if self.expert_failure == "raise" or not hasattr(experts, "drop"):
                    raise
                keep = _drop_experts(failure, gate, experts)
                kept = kept[keep]
                resp, gate_resp = _renormalised(resp[:, keep]), _renormalised(gate_resp[:, keep])

    def _em_step(self, gate, experts, X, design, y, sample_weight, resp, gate_resp, rng):
        """One EM iteration: the M-step of the gate and the experts from the
        responsibilities, then the E-step. Refits ``gate`` and ``experts`` in
        place; returns the experts' outputs, the noise parameters, the
        log-likelihoods, the new responsibilities (the experts', the gate's)
        and each row's log-likelihood."""
        unit = self._unit_weights
        targets = gate_resp if unit else gate_resp * sample_weight[:, None]
        weights = resp if unit else resp * sample_weight[:, None]
        gate.fit_standardized(design.Z, targets, design)
        # the built-in experts solve on the design's rows where it has their
        # products (see skmoe._design)
        builtin = {"design": design} if self.estimator is None else {}
        experts.fit(X, y, weights, random_state=rng, **builtin)
        outputs = self._likelihood.outputs(experts, X)
        _check_finite_outputs(outputs, weights)
        params = self._likelihood.update_params(experts, outputs, y, weights)
        del weights  # let go before the E-step makes its (n, K) arrays
        log_lik = self._likelihood.log_lik(outputs, y, params)
        return outputs, params, log_lik, *posteriors(gate, design.Z, log_lik)

    # ------------------------------------------------------------------ online EM
    def _online_fit_available(self):
        """True where ``partial_fit`` exists, else an AttributeError that says
        why: the online M-step works on the built-in experts' statistics."""
        if self.estimator is None and self.solver == "em" and not isinstance(self.n_experts, tuple):
            return True
        raise AttributeError(
            "partial_fit needs the built-in experts (estimator=None), solver='em' and one "
            "level of gating (an int n_experts), whose running sufficient statistics online "
            f"EM updates; got estimator={self.estimator!r}, solver={self.solver!r}, "
            f"n_experts={self.n_experts!r}. Use fit on all rows otherwise."
        )

    def _prepare_online_target(self, y, sample_weight, classes):
        """``_prepare_target`` for the first chunk of ``partial_fit``."""
        return self._prepare_target(y, sample_weight)

    def _partial_fit(self, X, y, sample_weight, classes=None):
        """One chunk of online EM (see the subclasses' ``partial_fit``).

        The first chunks are kept and fitted by batch EM until they hold
        enough rows to place every expert (:func:`~skmoe._online.warm_up_rows`);
        stepwise EM starts from that fit. After it, each chunk first decides
        the move tried on the chunk before, then gets its rounds of E- and
        M-steps, then a new move is tried on it.
        """

        if self.device != "cpu" or is_cupy_array(X):
            raise ValueError("partial_fit runs on the CPU; use device='cpu' and NumPy input.")
        first = not hasattr(self, "gate_")
        X, y = self._validate_data(X, y, reset=first)
        sample_weight = check_weights(sample_weight, X.shape[0]).astype(X.dtype, copy=False)
        if first:
            self._on_device = False
            y = self._prepare_online_target(y, sample_weight, classes)
            self._likelihood = self._make_likelihood(y, sample_weight)
            n_experts = self._resolved_n_experts()
            if n_experts > X.shape[0]:
                raise ValueError(
                    f"n_experts={n_experts} must be <= the {X.shape[0]} rows of the first "
                    "chunk: k-means starts the experts from it."
                )
        else:
            y = self._encode_target(y)
        state = getattr(self, "_online", None)
        if state is None:
            # a model fitted by fit (not by partial_fit): warm-up EM starts from it
            start = None
            if not first:
                start = copy.deepcopy((self.gate_, self._experts, self._get_params_attributes()))
            state = OnlineState(check_random_state(self.random_state), start)
        else:
            # copies: the state is replaced only once the step has succeeded
            state = copy.copy(state)
            state.rng = copy.deepcopy(state.rng)
        state.n_chunks += 1
        if state.rows is not None:
            gate, experts, params, Z, weights = self._online_warm_up(state, X, y, sample_weight)
        else:
            gate, experts, params, Z = self._online_step(state, X, y, sample_weight)
            weights = sample_weight
        self.gate_, self._experts, self._online = gate, experts, state
        self._set_params_attributes(params)
        self.estimators_ = experts.to_estimators()
        self.n_iter_ = state.n_chunks
        self.expert_load_, self.expert_importance_ = routing_shares(
            gate.log_proba_standardized(Z), weights
        )
        return self

    def _online_warm_up(self, state, X, y, sample_weight):
        """Keep the chunk and fit batch EM on all rows kept; once they are
        enough, start the running statistics from that fit and let the rows go.

        Stepwise EM only refines: its statistics, once settled, hold each
        expert on the regime it started on. On one chunk k-means and EM
        cannot place many experts (800 rows for 8 experts of 17
        coefficients left some regimes shared), so the start is a batch fit
        on enough rows, with the merge-and-split moves and restarts of
        ``fit``. EM runs from the last call's fit and from k-means on the
        rows kept, and the fit of higher objective is kept: EM from k-means
        alone falls into a worse optimum on some sets of rows than on a
        smaller set. A model left by ``fit`` is only continued. Returns the
        gate, experts, likelihood parameters, and the standardised rows kept
        with their weights."""

        state.rows = [*state.rows, (X, y, sample_weight)]
        X = (sp.vstack if sp.issparse(X) else np.concatenate)([rows[0] for rows in state.rows])
        y, sample_weight = (np.concatenate([rows[i] for rows in state.rows]) for i in (1, 2))
        X, y, sample_weight, _ = _distinct_fit_rows(X, y, sample_weight, None)  # as fit's
        n_experts = self._resolved_n_experts()
        self._unit_weights = False  # the chunks' weights, whatever fit had
        best = None
        for start in (state.start, "kmeans"):
            if start is None or (start == "kmeans" and state.fitted):
                continue
            rng = check_random_state(self.random_state)  # each EM as fit's on these rows
            if start == "kmeans":
                gate, experts = (
                    self._make_gate(),
                    self._likelihood.builtin_experts(n_experts, self.expert_alpha),
                )
                gate.init_scaler(X, sample_weight)
                Z = gate.standardize(X)
                resp = self._initial_resp(Z, sample_weight, n_experts, rng)
            else:
                gate, experts, params = copy.deepcopy(start)
                Z = gate.standardize(X)
                log_lik = self._likelihood.log_lik(self._likelihood.outputs(experts, X), y, params)
                resp = posteriors(gate, Z, log_lik)[0]
            gate.set_params(**self._gate_options())
            self._print_init_start(0)
            run = self._em_loop(gate, experts, X, Z, y, sample_weight, resp, rng)
            if best is None or run["lower_bound"] > best[0]["lower_bound"]:
                best = run, Z
        run, Z = best
        gate, experts, params = run["gate"], run["experts"], run["params"]
        state.start = (gate, experts, params)
        n_parameters = (n_experts - 1) * (X.shape[1] + 1)
        n_parameters += self._n_expert_parameters(n_experts, X.shape[1])
        if X.shape[0] >= warm_up_rows(n_parameters):
            state.rows = state.start = None
            state.experts, state.gate = self._likelihood.online_statistics(), OnlineGate()
            mixture = (gate, experts, state.experts, state.gate)
            params = self._online_rounds(mixture, X, Z, y, sample_weight, params, rounds=1)
            state.iterate, gate = gate, state.gate.averaged(gate)
        return gate, experts, params, Z, sample_weight

    def _online_step(self, state, X, y, sample_weight):
        """Stepwise EM on one chunk: keep the trial of the last chunk's move if
        it fits this chunk, unseen by both, significantly better; refine the
        chunk's E-step ``_ONLINE_STEPS_PER_CHUNK`` times; try a move on it.
        Returns the gate averaged over its iterates (see
        :meth:`~skmoe._online.OnlineGate.averaged`), the experts, the
        likelihood's parameters and the standardised chunk."""

        gate, experts = copy.deepcopy((state.iterate, self._experts))
        params = self._get_params_attributes()
        Z = gate.standardize(X)
        if state.trial is not None:
            trial = state.trial
            new = self._online_row_log_lik(trial[0], trial[1], trial[4], X, Z, y)
            old = self._online_row_log_lik(gate, experts, params, X, Z, y)
            if significantly_better(new, old, sample_weight):
                gate, experts, state.experts, state.gate, params = copy.deepcopy(trial)
        state.experts, state.gate = copy.deepcopy((state.experts, state.gate))
        mixture = (gate, experts, state.experts, state.gate)
        params = self._online_rounds(mixture, X, Z, y, sample_weight, params)
        state.trial = self._online_move(state, gate, experts, X, Z, y, sample_weight, params)
        state.iterate = gate
        return state.gate.averaged(gate), experts, params, Z

    def _online_rounds(self, mixture, X, Z, y, sample_weight, params, rounds=None, **move):
        """E-steps of one chunk, each followed by the M-step from the running
        statistics; the first adds the chunk, the others replace its
        contribution. ``mixture`` is the gate, the experts and their
        statistics, all refitted in place; returns the likelihood's
        parameters. A move gives ``resp``, its start (no first E-step), and
        ``restart``, the experts whose past is dropped; all its rounds
        replace the chunk's contribution, made already."""
        gate, experts, stats, gate_stats = mixture
        resp, restart = move.get("resp"), move.get("restart", ())
        # a move's rounds run until the chunk's log-likelihood settles, as
        # fit's EM after a move: a split left after a few rounds is half made
        converge = bool(restart)
        previous, total = -np.inf, float(sample_weight.sum())
        for repeat in range(self.max_iter if converge else rounds or _ONLINE_STEPS_PER_CHUNK):
            gate_resp = resp
            if repeat or resp is None:
                log_lik = self._likelihood.log_lik(self._likelihood.outputs(experts, X), y, params)
                resp, gate_resp, row_log_lik = posteriors(gate, Z, log_lik)
                current = float(sample_weight @ row_log_lik) / total
                if converge and abs(current - previous) < self.tol:
                    break
                previous = current
            again = repeat > 0 or bool(restart)
            stats.update(experts, X, y, resp * sample_weight[:, None], again=again, restart=restart)
            params = self._likelihood.online_params(experts, stats)
            targets = gate_resp * sample_weight[:, None]
            gate_stats.update(gate, Z, targets, again=again, restart=restart)
        return params

    def _online_row_log_lik(self, gate, experts, params, X, Z, y):
        """Each row's log-likelihood under the mixture."""
        log_lik = self._likelihood.log_lik(self._likelihood.outputs(experts, X), y, params)
        return to_numpy(posteriors(gate, Z, log_lik)[2])

    def _online_move(self, state, gate, experts, X, Z, y, sample_weight, params):
        """The mixture after an online merge-and-split move on this chunk, for
        the next chunk to judge, or None.

        Batch EM frees an expert that duplicates another, or restarts one
        that has lost its rows, and gives it half of the rows of the expert
        that fits its own rows worst (see ``_em_loop``); it keeps the move if
        the objective rises. Online, the expert freed is the one whose
        removal costs this chunk's rows the least likelihood (an idle one, or
        either of two on one regime), the split is that of ``fit``'s moves on
        this chunk's rows, both experts forget their past statistics, and the
        trial runs the chunk's rounds again from there. Its judge is the next
        chunk, which neither mixture has seen."""

        log_lik = self._likelihood.log_lik(self._likelihood.outputs(experts, X), y, params)
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
        params = self._online_rounds(
            trial, X, Z, y, sample_weight, params, resp=start, restart=(free, split)
        )
        return (*trial, params)

    # ------------------------------------------------------------------ gate access
    def gate_proba(self, X):
        """Gate probabilities: how much each expert contributes to each row.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_experts)
            Non-negative, each row sums to 1. In X's floating type.
        """
        check_is_fitted(self)
        X_valid = self._validate_data(X, reset=False)
        return self._like_input(
            in_row_chunks(self.gate_.predict_proba, self._row_bytes(), X_valid), X
        )

    def predict_expert(self, X):
        """Index of the expert with the largest gate probability for each row.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        expert : ndarray of shape (n_samples,)
        """
        return self.gate_proba(X).argmax(axis=1)

    def _row_log_likelihood(self, X, y):
        """``log P(y_i | x_i)`` of each row under the fitted mixture."""
        check_is_fitted(self)
        X, y = self._validate_data(X, y, reset=False)
        log_lik = self._likelihood.log_lik(
            self._likelihood.outputs(self._experts, X),
            self._encode_target(y),
            self._get_params_attributes(),
        )
        return e_step(self.gate_.predict_log_proba(X), log_lik)[1]

    def _n_parameters(self):
        if self.estimator is not None:
            raise ValueError(
                "bic and aic need the built-in experts (estimator=None), whose number "
                "of parameters is known; it is not for arbitrary estimators."
            )
        n_experts = len(self.estimators_)
        return self.gate_.n_parameters() + self._n_expert_parameters(n_experts, self.n_features_in_)

    def _n_expert_parameters(self, n_experts, n_features):
        """Free parameters of the built-in experts (and their noise): a
        network expert's hidden layer, then its output layer's."""
        units = self.expert_hidden_units
        hidden, n_inputs = (0, n_features) if units is None else ((n_features + 1) * units, units)
        return n_experts * (hidden + self._likelihood.output_parameters(n_inputs))

    def bic(self, X, y):
        """Bayesian information criterion of the fitted mixture on (X, y).

        ``-2 log L + p log n``, where ``L`` is the likelihood of ``y`` given
        ``X`` and ``p`` the number of free parameters of the gate and the
        built-in experts. Lower is better. Only for ``estimator=None``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)

        Returns
        -------
        bic : float
        """
        n_parameters = self._n_parameters()  # refuses wrapped experts before any work
        log_lik = self._row_log_likelihood(X, y)
        return -2 * log_lik.sum(dtype=np.float64) + n_parameters * np.log(len(log_lik))

    def aic(self, X, y):
        """Akaike information criterion of the fitted mixture on (X, y).

        ``-2 log L + 2 p``; see :meth:`bic`. Lower is better. Only for
        ``estimator=None``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)

        Returns
        -------
        aic : float
        """
        n_parameters = self._n_parameters()  # refuses wrapped experts before any work
        return -2 * self._row_log_likelihood(X, y).sum(dtype=np.float64) + 2 * n_parameters

    def _row_bytes(self):
        """A generous estimate of the memory one row needs while predicting: its
        standardised copy, and a few arrays over experts (and classes)."""
        n_outputs = len(getattr(self, "classes_", [None]))
        return 8 * (self.n_features_in_ + 8 * len(self.estimators_) * n_outputs)

    def _like_input(self, result, X):
        """``result`` as the kind of array ``X`` is: NumPy in, NumPy out;
        CuPy in, CuPy out, whichever device computed it."""
        if is_cupy_array(X):
            return get_namespace(X).asarray(result)
        return to_numpy(result)

    def __getstate__(self):
        # parameters move to NumPy, so that the model loads without CUDA; it
        # then predicts on the CPU
        state = to_host(super().__getstate__())
        state["_on_device"] = False
        state["_skmoe_version"] = __version__
        return state

    def __setstate__(self, state):
        # as scikit-learn does for its own version: warn when the pickle was
        # written by another version of skmoe
        original = state.pop("_skmoe_version", "unknown, before 0.1")
        if original != __version__:
            warnings.warn(
                InconsistentVersionWarning(
                    estimator_name=type(self).__name__,
                    current_version=__version__,
                    original_version=original,
                ),
                stacklevel=2,
            )
        super().__setstate__(state)

    # ------------------------------------------------------------------ verbose
    # As sklearn.mixture: 1 prints each initialisation, each merge-and-split
    # move and every ``verbose_interval``-th iteration; 2 adds times and the
    # objective. Iterations are counted across the moves of an initialisation.
    def _print_init_start(self, init):
        self._iterations_seen = 0
        if self.verbose:
            print(f"Initialization {init}")
            self._init_prev_time = self._iter_prev_time = time()

    def _print_iter_end(self, lower_bound, change):
        self._iterations_seen += 1
        n_iter = self._iterations_seen
        if self.verbose and n_iter % self.verbose_interval == 0:
            if self.verbose == 1:
                print(f"  Iteration {n_iter}")
            else:
                now = time()
                print(
                    f"  Iteration {n_iter}\t time lapse {now - self._iter_prev_time:.5f}s"
                    f"\t log-likelihood {lower_bound:.5f}\t change {change:.5f}"
                )
                self._iter_prev_time = now

    def _print_restarts(self, experts):
        if self.verbose and len(experts):
            print(
                f"  Restart at iteration {self._iterations_seen}: experts "
                f"{list(map(int, experts))} (load under {self.min_expert_load}) take the "
                "worst-fitted rows"
            )

    def _print_move_start(self, description):
        if self.verbose:
            print(f"  Move at iteration {self._iterations_seen}: {description}")
            self._move_prev_time = time()

    def _print_move_end(self, kept, lower_bound, previous):
        if self.verbose:
            print(
                f"  Move {'kept' if kept else 'rejected'}. time lapse "
                f"{time() - self._move_prev_time:.5f}s\t lower bound {lower_bound:.5f} "
                f"(before the move {previous:.5f})."
            )

    def _print_init_end(self, lower_bound, converged):
        if self.verbose:
            status = "converged" if converged else "did not converge"
            elapsed = time() - self._init_prev_time
            print(
                f"Initialization {status}. time lapse {elapsed:.5f}s\t "
                f"lower bound {lower_bound:.5f}."
            )
