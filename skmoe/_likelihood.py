"""The experts' likelihoods: Gaussian noise about each expert's mean (the
regressor) and each expert's class probabilities (the classifier).

A likelihood is made at fit from the target, and answers every question the
solvers put to the experts' probability model: the experts' outputs, each
row's log-likelihood under each expert (and its gradient, for gradient
training), the M-step of its own parameters (the noise variances), the
penalty of the experts' coefficients in the objective, the distance between
two experts' predictions, the number of free parameters, the built-in experts
of its family, and the running statistics of online EM. Its own parameters
(``params``, the noise variances or None) are passed in and out, never kept:
they are a fitted attribute of the estimator.
"""

import numpy as np

from ._backend import erf, get_namespace, to_numpy
from ._backend._cross_entropy import class_log_lik
from ._backend._gaussian import gaussian_log_lik, weighted_squared_residuals
from ._backend._products import column_sum
from ._math import exp_floored, log_softmax_rows
from ._online import OnlineLogisticStatistics, OnlineStatistics
from .experts import LinearExperts, LogisticExperts, NetworkExperts

# float32's largest number and smallest normal one bound its likelihoods
_FLOAT32 = np.finfo(np.float32)

# Probabilities are clipped here before the log, so an expert that gives the
# true class probability 0 makes the row unlikely under it, not impossible.
_PROBA_FLOOR = 1e-10

# Newton steps of the built-in logistic experts per M-step: EM needs each
# M-step to improve them, not to solve them (a generalised EM, as the gate's
# steps). Two steps reached the objective of a solve to tol 1e-8 within
# 2e-4 per row at 1/4-1/10 of its time (benchmarks/peers.py); one step
# stopped EM early, 0.04 lower on regime classification.
_EXPERT_STEPS_PER_M_STEP = 2


class _Likelihood:
    """What every likelihood derives from its ``outputs`` and ``log_lik``."""

    def fused_log_lik(self, experts, X, y):
        """The (n, K) log-likelihoods straight from the experts, where a
        kernel forms them without the outputs; None: from the outputs."""
        return None

    def experts_log_lik(self, experts, X, y, params):
        """(n, K) log-likelihood of each row under each of the ``experts``."""
        fused = self.fused_log_lik(experts, X, y)
        return self.log_lik(self.outputs(experts, X), y, params) if fused is None else fused


class GaussianLikelihood(_Likelihood):
    """``y ~ N(f_k(x), sigma_k^2)`` under expert k.

    Parameters
    ----------
    variance_floor : float
        Lower bound of every noise variance.
    location : tuple of float
        The weighted mean and standard deviation of y: the network experts'
        output units, and the unit SQUAREM divides out.
    penalty_alpha : float or "auto"
        The ridge penalty of the built-in experts that EM's objective holds
        (0 for wrapped experts, and for gradient training's network experts,
        which carry their own); "auto": each expert's own, chosen at its fit.
    """

    n_classes = None  # a continuous target

    def __init__(self, variance_floor, location, penalty_alpha):
        self.variance_floor = variance_floor
        self.location = location
        self.penalty_alpha = penalty_alpha

    @classmethod
    def from_target(cls, y, sample_weight, *, noise_floor, penalty_alpha):
        """The likelihood whose floor is ``noise_floor`` times y's weighted
        variance; raises where y's squares overflow its floating type."""
        y64 = y.astype(np.float64, copy=False)  # float32's squares can leave its range
        total = float(sample_weight.sum())
        mean = float(sample_weight @ y64) / total
        with np.errstate(over="ignore"):  # reported below, in words
            y_var = float(sample_weight @ (y64 - mean) ** 2) / total
        if not np.isfinite(y_var):
            raise ValueError(
                "y's variance overflows float64 (values beyond about 1e154): rescale y."
            )
        if y.dtype == np.float32 and float(abs(y64 - mean).max()) ** 2 >= _FLOAT32.max:
            raise ValueError(
                "y's squares overflow float32 (deviations beyond about 1e19): rescale y, "
                "or pass X as float64."
            )
        # a constant target has no scale of its own: floor in absolute terms
        y_var = y_var if y_var > 0 else 1.0
        # under float32's normal numbers the floor would round to 0
        tiny = float(_FLOAT32.tiny) if y.dtype == np.float32 else 0.0
        return cls(max(noise_floor * y_var, tiny), (mean, np.sqrt(y_var)), penalty_alpha)

    @property
    def unit(self):
        """The scale of the experts' outputs (see :mod:`skmoe._acceleration`)."""
        return self.location[1]

    def builtin_experts(self, n_experts, alpha):
        return LinearExperts(n_experts, alpha=alpha)

    def network_experts(self, n_experts, scaler, *, hidden_units, alpha):
        offset, scale = self.location
        return NetworkExperts(
            n_experts,
            1,
            scaler,
            hidden_units=hidden_units,
            alpha=alpha,
            y_offset=offset,
            y_scale=scale,
        )

    def output_parameters(self, n_inputs):
        """Free parameters of one expert's output: coefficients, intercept and
        noise variance."""
        return n_inputs + 2

    def outputs(self, experts, X):
        """The experts' means, (n, K)."""
        return experts.predict(X)

    def log_lik(self, outputs, y, noise_variance):
        """(n, K) log-likelihood of each row under each expert."""
        return gaussian_log_lik(outputs, y, noise_variance)

    def log_lik_grad(self, outputs, y, noise_variance):
        """``log_lik`` of the network experts' raw outputs (n, K, 1), and its
        derivative with respect to them."""
        means = outputs[..., 0]
        grad = (y[:, None] - means) / noise_variance
        return self.log_lik(means, y, noise_variance), grad[..., None]

    def update_params(self, experts, outputs, y, weights):
        """The Gaussian M-step: each expert's noise variance."""
        residual_ss = column_sum(weighted_squared_residuals(weights, outputs, y))
        return self._noise_variance(experts, residual_ss, column_sum(weights))

    def _noise_variance(self, experts, residual_ss, mass):
        """Each expert's noise variance from its weighted residual sum of squares
        and its weight; floored, and the floor for an expert with no weight."""
        # For ridge experts the penalty alpha*||w||^2 / (2 sigma^2) is part of
        # the objective, so it enters the variance that maximises it.
        xp = get_namespace(residual_ss)
        # in the residuals' floating type: wrapped experts' zero norms are float64
        penalty = xp.asarray(self._ridge_penalties(experts), dtype=residual_ss.dtype)
        residual_ss = residual_ss + penalty
        variance = xp.where(mass > 0, residual_ss / xp.where(mass > 0, mass, 1.0), 0.0)
        return xp.maximum(variance, self.variance_floor)

    def penalty(self, experts, noise_variance):
        """The experts' ridge penalty in EM's objective."""
        if self.penalty_alpha == "auto":
            return 0.5 * float((self._ridge_penalties(experts) / noise_variance).sum())
        norms = get_namespace(noise_variance).asarray(experts.squared_norms())
        return 0.5 * self.penalty_alpha * float((norms / noise_variance).sum())

    def _ridge_penalties(self, experts):
        """``alpha ||coef_k||^2`` per expert: each its own penalty where
        ``expert_alpha="auto"`` chose them."""
        if self.penalty_alpha == "auto":
            return get_namespace(experts.coef_).asarray(experts.alpha_) * experts.squared_norms()
        return self.penalty_alpha * experts.squared_norms()

    def distance(self, means, noise_variance, a, b):
        """Per-row total variation between experts a and b, in [0, 1]."""
        # between N(mu_a, s^2) and N(mu_b, s^2) with the pooled variance s^2:
        # erf(|mu_a - mu_b| / (2 sqrt(2) s))
        pooled = 0.5 * (noise_variance[a] + noise_variance[b])
        return erf(abs(means[:, a] - means[:, b]) / (8 * pooled) ** 0.5)

    def params_arrays(self, noise_variance):
        """The noise variances as unconstrained arrays, for SQUAREM."""
        # as logarithms: any extrapolation keeps the variances positive
        return [get_namespace(noise_variance).log(noise_variance)]

    def params_from_arrays(self, arrays):
        """Inverse of :meth:`params_arrays`."""
        (log_variance,) = arrays
        xp = get_namespace(log_variance)
        return xp.maximum(xp.exp(log_variance), self.variance_floor)

    def online_statistics(self):
        """A new running-statistics object for online EM."""
        return OnlineStatistics()

    def online_params(self, experts, online):
        """The Gaussian M-step from the running statistics, as
        :meth:`update_params` does from the rows."""
        theta = np.column_stack([experts.coef_, experts.intercept_ + experts.coef_ @ online.offset])
        residual_ss = online.residual_sum_of_squares(theta)
        mass = online.gram[:, -1, -1] * online.weight
        variance = self._noise_variance(experts, residual_ss, mass)
        return variance.astype(experts.coef_.dtype, copy=False)  # float64 statistics, X's type


class CategoricalLikelihood(_Likelihood):
    """``y ~ Categorical(p_k(x))`` under expert k; no parameters of its own.

    Parameters
    ----------
    n_classes : int
    penalty_alpha : float
        The L2 penalty of the built-in experts that EM's objective holds
        (0 for wrapped experts and for gradient training).
    """

    unit = 1.0  # probabilities have no scale

    def __init__(self, n_classes, penalty_alpha):
        self.n_classes = n_classes
        self.penalty_alpha = penalty_alpha

    def builtin_experts(self, n_experts, alpha):
        # one expert's responsibilities are the sample weights at every
        # iteration: its M-step is its whole fit, solved
        steps = {} if n_experts == 1 else {"max_iter": _EXPERT_STEPS_PER_M_STEP}
        return LogisticExperts(n_experts, self.n_classes, alpha=alpha, **steps)

    def network_experts(self, n_experts, scaler, *, hidden_units, alpha):
        return NetworkExperts(
            n_experts,
            self.n_classes,
            scaler,
            hidden_units=hidden_units,
            alpha=alpha,
            classes=np.arange(self.n_classes),
        )

    def output_parameters(self, n_inputs):
        """Free parameters of one expert's output: a softmax over C classes
        has C - 1 free rows of coefficients and intercept."""
        return (self.n_classes - 1) * (n_inputs + 1)

    def outputs(self, experts, X):
        """The experts' class probabilities, (n, K, C)."""
        return experts.predict_proba(X)

    def log_lik(self, proba, y, params):
        xp = get_namespace(proba)
        return xp.log(xp.maximum(proba[xp.arange(len(y)), :, y], _PROBA_FLOOR))

    def fused_log_lik(self, experts, X, y):
        """The (n, K) log-likelihoods of the built-in multinomial experts by
        one kernel on the GPU, which forms no (n, K, C) probabilities (see
        :func:`~skmoe._backend._tiled.class_log_lik`); None elsewhere. The
        likelihood has no parameters of its own, which would need the
        probabilities."""
        if not isinstance(experts, LogisticExperts) or experts.n_classes < 3:
            return None
        return class_log_lik(X, experts.coef_, experts.intercept_, y, _PROBA_FLOOR)

    def log_lik_grad(self, logits, y, params):
        log_proba = log_softmax_rows(logits)
        rows = get_namespace(logits).arange(len(y))
        grad = -exp_floored(log_proba)
        grad[rows, :, y] += 1.0
        return log_proba[rows, :, y], grad

    def update_params(self, experts, outputs, y, weights):
        return None

    def penalty(self, experts, params):
        if not self.penalty_alpha:
            return 0.0
        if self.penalty_alpha == "auto":  # each expert's own, chosen at its fit
            # the alphas are on the host, the norms where the coefficients are
            return 0.5 * float(experts.current_alphas() @ to_numpy(experts.squared_norms()))
        return 0.5 * self.penalty_alpha * experts.squared_norms().sum()

    def distance(self, proba, params, a, b):
        return 0.5 * abs(proba[:, a] - proba[:, b]).sum(axis=1)

    def params_arrays(self, params):
        return []

    def params_from_arrays(self, arrays):
        return None

    def online_statistics(self):
        return OnlineLogisticStatistics()

    def online_params(self, experts, online):
        return None
