"""The softmax gate: a multinomial logistic model of which expert answers a row."""

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from .._backend import get_namespace
from .._backend._cross_entropy import softmax_loss_terms
from .._backend._products import affine
from .._backend._scaling import fit_scaler, standardize
from .._backend._top_k import keep_top_k
from .._compat import Interval, StrOptions, _check_sample_weight
from .._design import Design
from .._math import exp_floored, log_softmax_rows, softmax_cross_entropy
from .._optim import fit_softmax_newton
from ._balance import BALANCE_LOSSES

# The penalty of alpha="auto" for a gate with no coefficients yet: the
# estimators' numeric default.
_AUTO_START = 0.01
# The relative change of alpha="auto" at which :meth:`SoftmaxGate.fit`
# deems it settled, and its most fits.
_AUTO_RTOL, _AUTO_MAX_FITS = 1e-3, 100


class SoftmaxGate(BaseEstimator):
    """Softmax gate fitted to soft targets (responsibilities).

    ``g(x) = softmax(z(x) @ coef_ + intercept_)`` where ``z`` is ``x`` standardised
    with the training rows' weighted mean and scale (scale only for sparse input;
    missing values become 0, i.e. the feature casts no vote). Fitting minimises
    the cross-entropy against soft targets plus ``alpha / 2 * ||coef_||^2`` by
    truncated Newton steps, warm-started from the previous fit, which is what
    an EM M-step needs.

    Parameters
    ----------
    alpha : float or "auto", default=1.0
        L2 penalty on the coefficients of the standardised features. The
        intercept is not penalised. "auto": the penalty at which the
        Laplace approximation of the evidence is stationary, MacKay's fixed
        point ``gamma / ||coef_||^2`` (``gamma`` the number of coefficients
        the rows determine). Each fit from fitted coefficients first takes
        one step of it, so that EM's M-steps carry the penalty along with
        the gate; :meth:`fit` repeats its fits until the penalty settles. A
        gate with no coefficients yet starts from 0.01.
    max_iter : int, default=100
        Maximum number of Newton steps per fit.
    tol : float, default=1e-6
        Tolerance on the largest gradient entry of the per-row objective.
    top_k : int, default=None
        If set, each row keeps only its ``top_k`` largest gate probabilities,
        renormalised to sum to 1; the others are exactly 0. Fitting is not
        affected: the gate is always fitted as a full softmax.
    balance_loss : {"switch", "cv"}, default=None
        Load-balancing term added to the fitting objective: Switch
        Transformer's ``K * sum_k f_k P_k`` or the squared coefficient of
        variation of the experts' importance (Shazeer et al.); see
        :mod:`skmoe.gates._balance`. Both are per-row means, scaled by the
        total weight, so ``balance_coef`` weighs them against the mean
        cross-entropy.
    balance_coef : float, default=0.01
        Weight of ``balance_loss``.

    Attributes
    ----------
    scaler_ : StandardScaler
        Standardisation of the gate's input, fitted on the first call to ``fit``.
    coef_ : ndarray of shape (n_features, n_experts)
    intercept_ : ndarray of shape (n_experts,)
        Both in the floating type of the input last fitted (float32 for
        float32 X), as scikit-learn's linear models' coefficients.
    alpha_ : float
        The penalty of the last fit: ``alpha``, or the one "auto" chose.

    Examples
    --------
    >>> import numpy as np
    >>> from skmoe.gates import SoftmaxGate
    >>> X = np.array([[-2.0], [-1.0], [1.0], [2.0]])
    >>> resp = np.array([[1.0, 0.0], [0.9, 0.1], [0.1, 0.9], [0.0, 1.0]])
    >>> gate = SoftmaxGate(alpha=0.1).fit(X, resp)
    >>> gate.predict_proba(X).argmax(axis=1)
    array([0, 0, 1, 1])
    """

    _parameter_constraints: dict = {
        "alpha": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "top_k": [Interval(Integral, 1, None, closed="left"), None],
        "balance_loss": [StrOptions(set(BALANCE_LOSSES)), None],
        "balance_coef": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        alpha=1.0,
        *,
        max_iter=100,
        tol=1e-6,
        top_k=None,
        balance_loss=None,
        balance_coef=0.01,
    ):
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = tol
        self.top_k = top_k
        self.balance_loss = balance_loss
        self.balance_coef = balance_coef

    def fit(self, X, resp, sample_weight=None):
        """Fit the gate to responsibilities, warm-starting from a previous fit.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        resp : array-like of shape (n_samples, n_experts)
            Non-negative soft targets; each row is normalised to sum to 1.
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : SoftmaxGate
        """
        self._validate_params()
        resp = np.asarray(resp, dtype=np.float64)
        resp = resp / resp.sum(axis=1, keepdims=True)
        sample_weight = _check_sample_weight(sample_weight, X)
        if not hasattr(self, "scaler_"):
            self.init_scaler(X, sample_weight)
        Z, targets = self.standardize(X), resp * sample_weight[:, None]
        design = Design(Z)
        self.fit_standardized(Z, targets, design)
        for _ in range(_AUTO_MAX_FITS if self.alpha == "auto" else 0):
            previous = self._chosen_alphas()
            self.fit_standardized(Z, targets, design)
            if np.all(np.abs(self._chosen_alphas() - previous) <= _AUTO_RTOL * previous):
                break
        return self

    def _chosen_alphas(self):
        """The penalties of the last fit, as an array (one per node gate of a hierarchy)."""
        return np.array([self.alpha_])

    def init_scaler(self, X, sample_weight):
        """Fit the input standardisation; done once, before the first M-step."""
        self.scaler_ = fit_scaler(X, sample_weight)
        return self

    def standardize(self, X):
        """Standardised copy of X in its floating type, missing values set to 0."""
        return standardize(self.scaler_, X)

    def fit_standardized(self, Z, targets, design=None):
        """M-step on standardised input ``Z`` and weighted soft ``targets``.

        ``targets[i, k]`` is ``sample_weight[i] * resp[i, k]``. ``design``,
        the :class:`~skmoe._design.Design` of ``Z``, carries what a fit's
        M-steps share (made here if not given).
        """
        xp = get_namespace(Z)
        n_experts = targets.shape[1]
        if not hasattr(self, "coef_") or self.coef_.shape[1] != n_experts:
            self.coef_ = xp.zeros((Z.shape[1], n_experts), dtype=Z.dtype)
            self.intercept_ = xp.zeros(n_experts, dtype=Z.dtype)
        # all in Z's floating type (a float64 term would promote every
        # product); the coefficients follow it, as Ridge's follow X's
        self.coef_, self.intercept_, targets = (
            a.astype(Z.dtype, copy=False) for a in (self.coef_, self.intercept_, targets)
        )
        row_weight = targets.sum(axis=1)
        self.coef_, intercept, self.alpha_ = fit_softmax_newton(
            Design(Z) if design is None else design,
            self._logit_loss(targets, row_weight),
            row_weight,
            self.coef_,
            self.intercept_,
            alpha=self.current_alpha(),
            max_iter=self.max_iter,
            tol=self.tol,
            loss_terms=self._fused_loss_terms(Z, targets),
            evidence=self.alpha == "auto",
        )
        # softmax ignores a shift shared by all logits; keep the unpenalised
        # intercept centred so it cannot drift across warm starts.
        self.intercept_ = intercept - intercept.mean()
        return self.record_balance_penalty(Z, row_weight)

    def current_alpha(self):
        """The gate's penalty: ``alpha``, or for "auto" the last one chosen
        (0.01 before any), from which the next fit starts."""
        return getattr(self, "alpha_", _AUTO_START) if self.alpha == "auto" else self.alpha

    def _fused_loss_terms(self, Z, targets):
        """The plain cross-entropy's terms by one CUDA kernel (see
        :func:`~skmoe._backend._cross_entropy.softmax_loss_terms`), or None:
        on the CPU, with a balance term, or beyond the kernel's sizes."""
        return softmax_loss_terms(Z, targets) if self.balance_loss is None else None

    def record_balance_penalty(self, Z, row_weight):
        """Store the weighted balance loss of the current gate on ``Z``, the
        part of :meth:`penalty` that depends on the rows."""
        self._balance_penalty = 0.0
        if self.balance_loss is not None:
            proba = exp_floored(log_softmax_rows(self.logits_standardized(Z)))
            value = BALANCE_LOSSES[self.balance_loss](proba, row_weight)[0]
            self._balance_penalty = float(self.balance_coef * row_weight.sum() * value)
        return self

    def _logit_loss(self, targets, row_weight):
        """The fitting objective on logits: cross-entropy plus any balance term."""
        if self.balance_loss is None:
            return lambda logits: softmax_cross_entropy(logits, targets)
        balance = BALANCE_LOSSES[self.balance_loss]
        scale = self.balance_coef * row_weight.sum()

        def loss(logits):
            value, grad, proba = softmax_cross_entropy(logits, targets)
            balance_value, balance_grad = balance(proba, row_weight)
            return value + scale * balance_value, grad + scale * balance_grad, proba

        return loss

    def coefficients(self):
        """Copies of the fitted arrays, in a fixed order: what an EM
        accelerator moves (see :mod:`skmoe._acceleration`)."""
        return [self.coef_.copy(), self.intercept_.copy()]

    def set_coefficients(self, arrays):
        """Set the arrays :meth:`coefficients` returns from the front of
        ``arrays``; returns the rest."""
        self.coef_, self.intercept_, *rest = arrays
        return rest

    def drop_experts(self, keep):
        """Keep only the experts at the indices ``keep``: the softmax over the
        rest is the old gate renormalised over them."""
        self.coef_, self.intercept_ = self.coef_[:, keep], self.intercept_[keep]
        return self

    def logits_standardized(self, Z):
        """Gate logits of standardised rows, before any top-k selection, in
        Z's floating type whatever the fit's."""
        coef, intercept = (a.astype(Z.dtype, copy=False) for a in (self.coef_, self.intercept_))
        return affine(Z, coef, intercept)

    def log_proba_from_logits(self, logits):
        """Log gate probabilities (-inf for experts that top-k drops)."""
        if self.top_k is not None and self.top_k < logits.shape[1]:
            logits = keep_top_k(logits, self.top_k)
        return log_softmax_rows(logits)

    def log_proba_standardized(self, Z):
        """Log gate probabilities of standardised rows (-inf where top-k drops)."""
        return self.log_proba_from_logits(self.logits_standardized(Z))

    def penalty(self):
        """The objective's terms beyond the cross-entropy, at the last fit:
        ``alpha / 2 * ||coef_||^2`` and the weighted balance loss."""
        xp = get_namespace(self.coef_)
        return 0.5 * self.alpha_ * float(xp.vdot(self.coef_, self.coef_)) + self._balance_penalty

    def n_parameters(self):
        """Free parameters: softmax logits are free up to one shared shift, so
        ``n_experts - 1`` experts' coefficients and intercepts."""
        n_features, n_experts = self.coef_.shape
        return (n_experts - 1) * (n_features + 1)

    def predict_log_proba(self, X):
        """Log gate probabilities, shape (n_samples, n_experts)."""
        check_is_fitted(self)
        return self.log_proba_standardized(self.standardize(X))

    def predict_proba(self, X):
        """Gate probabilities, shape (n_samples, n_experts); rows sum to 1."""
        return exp_floored(self.predict_log_proba(X))
