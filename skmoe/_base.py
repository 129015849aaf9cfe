"""The estimator shell shared by the mixture-of-experts estimators.

``fit`` validates, resolves the options into a plan (:mod:`skmoe._plan`),
makes the experts' likelihood (:mod:`skmoe._likelihood`), runs a solver
(:mod:`skmoe._solvers`) from ``n_init`` starts and publishes the best
:class:`~skmoe._solvers.result.FitResult` as the fitted attributes, as
:mod:`sklearn.mixture._base` does. ``partial_fit`` does the same with online
EM. Subclasses give the target's encoding, the likelihood and predictions.
"""

import copy
import functools
import warnings
from abc import ABCMeta, abstractmethod
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state, get_tags
from sklearn.utils.validation import check_is_fitted

from ._backend import get_namespace, to_host, to_numpy
from ._chunks import in_row_chunks
from ._compat import Interval, StrOptions, _fit_context
from ._em import check_init_resp, e_step, routing_shares
from ._online import OnlineState
from ._plan import (
    check_device_options,
    check_online_device,
    check_parameter_count,
    check_warm_start,
    estimator_list,
    make_online_plan,
    make_plan,
    n_expert_parameters,
    online_available,
    warn_of_resampled_experts,
)
from ._rows import distinct_fit_rows
from ._solvers.em import EM
from ._solvers.gradient import Gradient
from ._solvers.grow import Growth
from ._solvers.init import fit_from, new_start, warm_start
from ._solvers.online import OnlineEM
from ._validation import check_data, check_weights, fits_on_device, like_input
from ._verbose import Printer
from ._version import __version__
from ._warn import warn
from .exceptions import InconsistentVersionWarning
from .experts._estimators import ExpertFitError
from .gates._balance import BALANCE_LOSSES


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


def _take_rows(a, rows):
    """``a[rows]`` for host indices ``rows``, ``a`` on either device."""
    return a[get_namespace(a).asarray(rows)]


class BaseMixtureOfExperts(BaseEstimator, metaclass=ABCMeta):
    """Shared parameters, EM fit and gate access of the mixture estimators.

    Do not use directly: use :class:`MixtureOfExpertsRegressor` or
    :class:`MixtureOfExpertsClassifier`.
    """

    _parameter_constraints: dict = {
        "estimator": [list, None],  # subclasses add the methods an expert needs
        "n_experts": [Interval(Integral, 1, None, closed="left"), tuple, StrOptions({"auto"})],
        "top_k": [Interval(Integral, 1, None, closed="left"), None],
        "gate_noise": ["boolean"],
        "gate_alpha": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
        "balance_loss": [StrOptions(set(BALANCE_LOSSES)), None],
        "balance_coef": [Interval(Real, 0, None, closed="left")],
        "min_expert_load": [Interval(Real, 0, 1, closed="left")],
        "expert_alpha": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
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
        n_experts="auto",
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
    def _make_likelihood(self, y, sample_weight, penalty_alpha):
        """The experts' likelihood (see :mod:`skmoe._likelihood`), from the
        encoded target of the distinct rows and their weights, and the built-in
        experts' penalty that EM's objective holds."""

    @abstractmethod
    def _encode_target(self, y):
        """``y`` in the form the likelihood takes (float targets, class indices)."""

    def _weigh_target(self, y, sample_weight, *, online=False):
        """The row weights with any weights the target gives its rows (the
        classifier's ``class_weight``), float64 on the host."""
        return sample_weight

    def _set_params_attributes(self, params):
        """Store the likelihood's parameters as fitted attributes."""

    def _get_params_attributes(self):
        """Inverse of ``_set_params_attributes``, for warm starts."""
        return None

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # the gate and the built-in experts take sparse input, never NaN;
        # wrapped experts decide for themselves
        expert_tags = [get_tags(est).input_tags for est in estimator_list(self.estimator)]
        tags.input_tags.sparse = all(t.sparse for t in expert_tags)
        tags.input_tags.allow_nan = bool(expert_tags) and all(t.allow_nan for t in expert_tags)
        return tags

    def _validate_data(self, X, y="no_validation", *, reset, device_finite_check=True):
        """Validated ``X`` (and ``y``), on the GPU for a fit there
        (``device="cuda"`` or CuPy input at fit, a GPU fit at predict); see
        :func:`~skmoe._validation.check_data`."""
        on_device = fits_on_device(self, X) if reset else self._on_device
        return check_data(
            self, X, y, reset=reset, on_device=on_device, finite_check=device_finite_check
        )

    def _printer(self):
        return Printer(self.verbose, self.verbose_interval, self.min_expert_load)

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
        self._on_device = fits_on_device(self, X)
        if self._on_device:
            check_device_options(self)
        X, y = self._validate_data(X, y, reset=True)
        sample_weight = check_weights(sample_weight, X.shape[0])
        y = self._prepare_target(y, sample_weight)
        # the weights take X's floating type, so that the (n, K) arrays they
        # multiply stay in it; a classifier's labels, encoded on the host,
        # join X on its device
        xp = get_namespace(X)
        sample_weight = xp.asarray(self._weigh_target(y, sample_weight), dtype=X.dtype)
        y = xp.asarray(y)
        n_weighted = int(np.count_nonzero(to_numpy(sample_weight)))
        plan = make_plan(self, X.shape[0], n_weighted)
        init_resp = None
        if not isinstance(self.init, str):
            init_resp = check_init_resp(self.init, X.shape[0], plan.n_experts)
        X, y, sample_weight, init_resp = distinct_fit_rows(X, y, sample_weight, init_resp)
        self._likelihood = self._make_likelihood(y, sample_weight, plan.penalty_alpha)
        validation = None
        # growing wrapped experts, whose parameters cannot be counted for
        # BIC, is judged on held-out rows
        if self.early_stopping or (plan.grow and not plan.builtin):
            try:
                # the indices are split on the host, the rows where they lie
                split = train_test_split(
                    np.arange(X.shape[0]),
                    test_size=self.validation_fraction,
                    random_state=self.random_state,
                    stratify=to_numpy(y) if is_classifier(self) else None,
                )
            except ValueError:
                if self.early_stopping:
                    raise
                # too few rows (of a class) to hold any out: no criterion
                # can judge a split, and the mixture stays one expert
                split, plan = None, plan.sized(1)
            if split is not None:
                train, held_out = split
                validation = tuple(_take_rows(a, held_out) for a in (X, y, sample_weight))
                X, y, sample_weight = (_take_rows(a, train) for a in (X, y, sample_weight))
                init_resp = None if init_resp is None else _take_rows(init_resp, train)
        self._fit_mixture(plan, X, y, sample_weight, validation, init_resp, n_weighted)
        return self

    def _fit_mixture(self, plan, X, y, sample_weight, validation, init_resp, n_rows):
        """Run the plan's solver from each start, or grow the mixture, and
        publish the best fit. ``n_rows`` counts the rows of positive weight
        given to ``fit``."""
        self._online = None  # fit starts anew; partial_fit then continues from it
        rng = check_random_state(self.random_state)
        warm = self.warm_start and hasattr(self, "converged_")
        if warm:
            plan = plan.sized(len(self.estimators_)) if plan.grow else plan
            check_warm_start(len(self.estimators_), plan.n_experts)
        warn_of_resampled_experts(plan.templates)
        printer = self._printer()
        unit = bool(get_namespace(X).all(sample_weight == 1))

        def solver(plan, moves=True, design=None):
            if plan.solver == "gradient":
                return Gradient(plan, self._likelihood, printer, validation)
            # with unit weights, EM skips multiplying its (n, K) arrays by them
            return EM(
                plan,
                self._likelihood,
                printer,
                unit_weights=unit,
                validation=validation,
                moves=moves,
                design=design,
            )

        if plan.grow:
            growth = Growth(plan, self._likelihood, solver, n_rows=n_rows, validation=validation)
            best, best_Z, path = self._grow(growth, X, y, sample_weight, rng)
        else:
            start = (X, y, sample_weight, init_resp, rng, warm)
            best, best_Z = self._start(plan, solver, *start)
            path = None
        if not best.converged:
            warn(
                "Best performing initialization did not converge. Try different init "
                "parameters, or increase max_iter, tol, or check for degenerate data.",
                ConvergenceWarning,
            )
        self._publish(best, best_Z, sample_weight)
        self.growth_path_ = path

    def _grow(self, growth, X, y, sample_weight, rng):
        """The best of ``n_init`` grown mixtures: its result, standardised
        rows and growth path."""
        best = None
        for _ in range(self.n_init):
            result, criterion, Z, path = growth.fit(X, y, sample_weight, rng)
            if best is None or growth.better(criterion, best[1]):
                best = result, criterion, Z, path
        return best[0], best[2], best[3]

    def _start(self, plan, solver, X, y, sample_weight, init_resp, rng, warm):
        """The best of ``n_init`` fits of the plan's size, or (``warm``) the
        fit continued from the fitted model: its result and standardised rows."""
        best = None
        for init in range(1 if warm else self.n_init):
            if warm:
                fitted = (self.gate_, self._experts, self._get_params_attributes())
                start = warm_start(self._likelihood, fitted, X, y)
            else:
                start = new_start(plan, self._likelihood, X, sample_weight, rng, init_resp)
            result = fit_from(solver(plan), init, start, X, y, sample_weight, rng)
            if best is None or result.lower_bound > best[0].lower_bound:
                best = result, start[2]
        return best

    def _publish(self, result, Z, sample_weight):
        """Set the fitted attributes from a solver's result."""
        self._set_model(result.gate, result.experts, result.params, Z, sample_weight)
        self.n_iter_ = len(result.lower_bounds)
        self.converged_ = result.converged
        self.lower_bound_ = result.lower_bound
        self.lower_bounds_ = result.lower_bounds
        self.n_expert_restarts_ = result.n_expert_restarts
        self.n_objective_falls_ = result.n_objective_falls
        self.dropped_experts_ = sorted(getattr(result.experts, "dropped_", []))
        self.n_merges_ = result.n_merges
        self.validation_scores_ = result.validation_scores

    def _set_model(self, gate, experts, params, Z, sample_weight):
        """Set the fitted gate, experts and likelihood parameters, and the
        experts' shares of the training rows ``Z`` (standardised)."""
        self.gate_, self._experts = gate, experts
        self._set_params_attributes(params)
        self.estimators_ = experts.to_estimators()
        self.n_experts_ = len(self.estimators_)
        self.expert_load_, self.expert_importance_ = routing_shares(
            self.gate_.log_proba_standardized(Z), sample_weight
        )

    # ------------------------------------------------------------------ online EM
    def _online_fit_available(self):
        """True where ``partial_fit`` exists, else an AttributeError that says why."""
        return online_available(self)

    def _prepare_online_target(self, y, sample_weight, classes):
        """``_prepare_target`` for the first chunk of ``partial_fit``."""
        return self._prepare_target(y, sample_weight)

    def _partial_fit(self, X, y, sample_weight, classes=None):
        """One chunk of online EM (see the subclasses' ``partial_fit``).

        The first chunks are kept and fitted by batch EM until they hold
        enough rows to place every expert (:func:`~skmoe._online.warm_up_rows`);
        stepwise EM starts from that fit. After it, each chunk first decides
        the move tried on the chunk before, then gets its rounds of E- and
        M-steps, then a new move is tried on it (see
        :class:`~skmoe._solvers.online.OnlineEM`).
        """
        check_online_device(fits_on_device(self, X))
        first = not hasattr(self, "gate_")
        X, y = self._validate_data(X, y, reset=first)
        sample_weight = check_weights(sample_weight, X.shape[0])
        if first:
            self._on_device = False
            y = self._prepare_online_target(y, sample_weight, classes)
        else:
            y = self._encode_target(y)
        sample_weight = self._weigh_target(y, sample_weight, online=True)
        sample_weight = sample_weight.astype(X.dtype, copy=False)
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
        # n_experts="auto" grows the warm-up's batch fits; stepwise EM keeps
        # the experts they leave
        growing = state.rows is not None and not state.fitted
        plan = make_online_plan(self, X.shape[0] if first else None, growing)
        if first:
            self._likelihood = self._make_likelihood(y, sample_weight, plan.penalty_alpha)
        solver = OnlineEM(plan, self._likelihood, self._printer())
        state.n_chunks += 1
        if state.rows is not None:
            fitted = solver.warm_up(state, X, y, sample_weight)
            gate, experts, params, Z, sample_weight = fitted
        else:
            params = self._get_params_attributes()
            gate, experts, params, Z = solver.step(
                state, self._experts, params, X, y, sample_weight
            )
        self._online, self.n_iter_, self.growth_path_ = state, state.n_chunks, None
        self._set_model(gate, experts, params, Z, sample_weight)
        return self

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
        return like_input(in_row_chunks(self.gate_.predict_proba, self._row_bytes(), X_valid), X)

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

    def log_likelihood_samples(self, X, y):
        """Log-likelihood of each row under the fitted mixture, ``log p(y_i | x_i)``.

        The per-row quantity that :meth:`bic` and :meth:`aic` sum, as
        ``score_samples`` is for scikit-learn's mixtures. Those model X
        alone and take X alone; a mixture of experts models y given X, so
        this method needs y and has its own name (scikit-learn calls any
        ``score_samples`` with X alone). :meth:`score` stays R^2 or accuracy.
        For the classifier it is the log of :meth:`predict_proba` at each
        row's class; for the regressor, the log of the mixture's density of y
        (a Gaussian per expert, of the variance fitted to its rows).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)

        Returns
        -------
        log_likelihood : ndarray of shape (n_samples,)

        Examples
        --------
        >>> from skmoe import MixtureOfExpertsRegressor
        >>> from skmoe.datasets import make_regime_regression
        >>> X, y = make_regime_regression(n_samples=500, n_features=2, random_state=0)
        >>> model = MixtureOfExpertsRegressor(n_experts=2, random_state=0).fit(X, y)
        >>> model.log_likelihood_samples(X, y).shape
        (500,)
        """
        return like_input(self._row_log_likelihood(X, y), X)

    def _row_log_likelihood(self, X, y):
        """``log P(y_i | x_i)`` of each row under the fitted mixture."""
        check_is_fitted(self)
        X, y = self._validate_data(X, y, reset=False)
        likelihood = self._likelihood
        outputs = likelihood.outputs(self._experts, X)
        y = get_namespace(X).asarray(self._encode_target(y))  # a classifier's, on the host
        log_lik = likelihood.log_lik(outputs, y, self._get_params_attributes())
        return e_step(self.gate_.predict_log_proba(X), log_lik)[1]

    def _n_parameters(self):
        check_parameter_count(self)
        n_experts = len(self.estimators_)
        return self.gate_.n_parameters() + n_expert_parameters(
            self._likelihood, n_experts, self.n_features_in_, self.expert_hidden_units
        )

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
