"""Mixture-of-experts regression with Gaussian expert noise."""

from functools import partial
from numbers import Real

import numpy as np
from sklearn.base import RegressorMixin
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from ._backend import all_finite, check_device_finite, get_namespace
from ._backend._predict import fused_predict_fits, linear_mixture_mean
from ._base import BaseMixtureOfExperts, keeps_state_on_failure
from ._chunks import in_row_chunks
from ._compat import HasMethods, Interval, _fit_context
from ._likelihood import GaussianLikelihood
from ._validation import like_input
from .experts import LinearExperts
from .gates import SoftmaxGate


class MixtureOfExpertsRegressor(RegressorMixin, BaseMixtureOfExperts):
    """Mixture of experts for regression, trained by EM.

    The model is ``p(y | x) = sum_k g_k(x) N(y; f_k(x), sigma_k^2)``: a softmax
    gate ``g`` chooses, per row, how much each expert ``f_k`` answers, and each
    expert has its own noise variance. EM alternates an E-step (each row's
    responsibilities, the posterior over experts) and an M-step that refits the
    gate to the responsibilities and each expert with them as sample weights.

    Parameters
    ----------
    estimator : estimator, list of estimators or None, default=None
        The experts. None: built-in ridge experts, all K solved in one batched
        call. One estimator: cloned ``n_experts`` times, each clone with its own
        ``random_state``. A list: one expert per element (``n_experts`` then
        defaults to its length). Estimators whose ``fit`` takes no
        ``sample_weight`` are fitted on a weighted bootstrap of their rows.
        They are given X as it is (float32 stays float32) and compute in
        whatever type they do; their predictions enter the mixture in X's type.
    n_experts : "auto", int or tuple of int, default="auto"
        Number of experts, K. "auto" grows the mixture from one expert (the
        single model) by splitting an expert in two while a criterion says
        the split is real: BIC for the built-in experts; for the estimators
        given, the log-likelihood of ``validation_fraction`` of the rows held
        out (with too few rows to hold out, one expert). ``n_experts_`` holds
        the K chosen and ``growth_path_`` each size tried; at most 32
        experts. With a list of estimators, "auto" means one expert per
        element. A tuple builds a hierarchy of gates (Jordan & Jacobs,
        1994): ``(4, 4)`` is a root gate over 4 branches, each with a gate
        over 4 experts, 16 experts in all, trained by EM with nested
        posteriors. ``(K,)`` is the flat mixture.
    top_k : int, default=None
        Sparse routing: each row is answered by its ``top_k`` most probable
        experts only, with their gate probabilities renormalised. In training
        a row's responsibilities live on those experts alone, so each expert
        is fitted only on the rows routed to it. None, or ``n_experts`` or
        more: all experts answer (a dense gate), so that a grid over both
        parameters has a model in every cell.
    gate_noise : bool, default=False
        Noisy top-k gating (Shazeer et al., 2017): while training, each row's
        gate logits get Gaussian noise of a learned per-expert scale,
        ``softplus(x @ W_noise)``, before its top ``top_k`` experts are chosen;
        predictions stay deterministic. The noise comes from ``random_state``.
        Needs ``top_k`` and ``solver="gradient"``.
    gate_alpha : float or "auto", default=0.01
        L2 penalty of the softmax gate (on standardised features). Small values
        let the gate draw sharp boundaries between regimes. "auto" (EM): at
        each M-step the gate takes one step of MacKay's fixed point for the
        penalty that maximises the Laplace approximation of the evidence, so
        the penalty settles with the gate; ``gate_.alpha_`` holds the last one
        (for a hierarchy, each node gate in ``gate_.gates_`` holds its own).
    balance_loss : {"switch", "cv"}, default=None
        Load balancing: a term added to the gate's M-step (and to the EM
        objective) that penalises experts taking an unequal share of the rows.
        "switch" is Switch Transformer's ``K * sum_k f_k P_k`` (``f_k`` the
        share of rows whose most probable expert is ``k``, ``P_k`` its mean
        gate probability); "cv" the squared coefficient of variation of the
        experts' summed gate probabilities (Shazeer et al., 2017).
    balance_coef : float, default=0.01
        Weight of ``balance_loss`` against the mean log-likelihood.
    min_expert_load : float, default=1e-3
        An expert whose share of the training rows' responsibility (its load)
        falls under this is dead: it is restarted on the rows the mixture fits
        worst, at most twice per expert and EM run, and counted in
        ``n_expert_restarts_``. Experts are never dropped. 0 disables restarts.
    expert_alpha : float or "auto", default=1.0
        L2 penalty of the built-in ridge experts, as ``Ridge(alpha=...)``
        (with ``solver="gradient"``, on the network experts' weights).
        "auto": at each M-step, each expert takes the penalty that minimises
        the generalized cross-validation error of its weighted ridge problem,
        found from its weighted Gram matrix (``solver="em"``); each
        :class:`~sklearn.linear_model.Ridge` of ``estimators_`` carries the
        ``alpha`` chosen for it. Ignored when ``estimator`` is given.
    noise_floor : float, default=1e-3
        Lower bound on each expert's noise variance, as a fraction of the
        variance of ``y``, so that no expert collapses onto a few rows.
    expert_hidden_units : int, default=None
        Built-in experts with one hidden layer of this many ReLU units each
        (``solver="gradient"`` and ``estimator=None`` only). None: linear
        experts.
    solver : {"em", "gradient"}, default="em"
        "em": expectation-maximisation, each M-step solving the experts'
        weighted fits. "gradient": minibatch Adam on the same objective. With
        the built-in experts, gate and experts are trained jointly end to end
        (the experts then see the gate's standardised features, and
        ``expert_alpha`` is an L2 penalty on their weights); with other
        estimators, a generalised EM: each epoch refits the experts on the
        responsibilities, then moves the gate by Adam steps.
    max_iter : int, default=100
        Maximum number of EM iterations per initialisation, SQUAREM's
        extrapolations tried included (built-in experts, see the User
        Guide); with ``solver="gradient"``, of epochs (passes
        over the training rows).
    tol : float, default=1e-3
        EM stops when the objective (mean log-likelihood less the penalties
        per unit of sample weight) changes by less than ``tol`` and so does
        Aitken's estimate of its rise still to come, from the last two
        iterations' (with wrapped estimators, see ``n_iter_no_change``),
        and a merge-and-split move
        is kept only if it raises the objective by more than ``tol``. Gradient
        training stops when the objective, or the validation score, has not
        improved by ``tol`` for ``n_iter_no_change`` epochs.
    learning_rate_init : float, default=0.05
        Adam's initial step size (``solver="gradient"``); divided by 5 on each
        plateau, up to three times, before training stops. Larger than
        scikit-learn's MLP default: the gate must grow sharp boundaries.
    batch_size : int or "auto", default="auto"
        Rows per minibatch (``solver="gradient"``); "auto" is
        ``min(200, n_samples)``.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training rows and stop when
        their mean log-likelihood has not risen by ``tol`` for
        ``n_iter_no_change`` iterations (EM) or epochs (gradient); the best
        iteration's model is kept, and EM keeps a merge-and-split move only
        if it raises the held-out log-likelihood by more than ``tol``.
    validation_fraction : float, default=0.1
        Share of the rows held out for ``early_stopping``, and by
        ``n_experts="auto"`` with the estimators given (whose splits the
        held-out log-likelihood judges; EM then also stops on those rows).
    n_iter_no_change : int, default=10
        Epochs without an improvement of ``tol`` before gradient training
        stops; under EM with wrapped estimators, whose objective can fall
        (see ``lower_bounds_``), iterations without an improvement of ``tol``
        in the best objective before EM is taken to have converged; with
        ``early_stopping``, iterations without an improvement of the held-out
        score.
    n_init : int, default=1
        Number of initialisations; the one with the best objective is kept.
    init : {"kmeans", "random"} or array-like of shape (n_samples, n_experts), \
            default="kmeans"
        Initial responsibilities: one-hot k-means clusters of the standardised
        X, random rows, or given (rows are normalised to sum to 1).
    warm_start : bool, default=False
        If True, ``fit`` continues from the previous solution (``n_init`` is
        then ignored).
    n_jobs : int, default=None
        Number of jobs fitting the K estimators of each M-step in parallel
        (joblib). Unused by the built-in experts.
    expert_failure : {"raise", "drop"}, default="raise"
        What to do when an expert's fit raises or its outputs are not finite:
        re-raise, naming the expert and its weight mass, or (with ``solver="em"``
        and one level of gating) drop the expert, renormalise the gate over the
        others, warn, and record it in ``dropped_experts_``.
    random_state : int, RandomState instance or None, default=None
        Controls the initialisation, the experts' seeds and the weighted
        bootstrap. Pass an int for reproducible fits.
    verbose : int, default=0
        1 prints each initialisation, 2 also the objective every
        ``verbose_interval`` iterations.
    verbose_interval : int, default=10
    device : {"cpu", "cuda"}, default="cpu"
        Where the fit runs. "cuda" (or CuPy input, which implies it) runs EM
        on the GPU through CuPy (``pip install "skmoe[gpu]"``), with
        ``solver="em"``. Estimators given as experts that take CuPy arrays
        (cuML's, or with a ``device="cuda"`` parameter, as XGBoost's) are
        fitted on the device's rows, the others on host copies of their
        routed rows. Fitted parameters stay on the device they were fitted
        on; outputs follow the input (NumPy in, NumPy out; CuPy in, CuPy
        out). A pickled model holds NumPy arrays and predicts on the CPU.

    Attributes
    ----------
    gate_ : SoftmaxGate
        The fitted gate.
    estimators_ : list of estimators
        The K fitted experts. For the built-in experts, :class:`~sklearn.linear_model.Ridge`
        objects that carry the coefficients of the batched solve.
    noise_variance_ : ndarray of shape (n_experts,)
        Each expert's Gaussian noise variance. Like the gate's and the
        built-in experts' coefficients, in the floating type of the X fitted
        (float32 for float32 X, as :class:`~sklearn.linear_model.Ridge`).
    n_experts_ : int
        The number of experts fitted: ``n_experts`` where it is given, the K
        chosen under "auto", less any dropped by ``expert_failure="drop"``.
    growth_path_ : dict or None
        Under ``n_experts="auto"``, the sizes ``fit`` tried, in order: arrays
        ``"n_experts"``, the criterion of each (``"bic"``, lower is better, or
        ``"validation_log_likelihood"``, higher is better) and ``"kept"``,
        whether the split to that size was kept. None for a fixed
        ``n_experts`` and after ``partial_fit``.
    n_iter_ : int
        EM iterations of the kept initialisation (under "auto", of the fit at
        the size kept), merge-and-split runs included; one per entry of
        ``lower_bounds_`` (an extrapolation that gained nothing is not
        counted).
    converged_ : bool
    lower_bound_ : float
        Objective of the kept initialisation: weighted mean log-likelihood less
        the gate's and the built-in experts' L2 penalties per unit weight.
    lower_bounds_ : ndarray of shape (`n_iter_`,)
        The objective after each EM iteration. With the built-in experts,
        whose M-steps maximise it, EM never lowers it, except where an expert
        was restarted or a merge-and-split move began (see the attributes
        below). Wrapped estimators need not maximise their weighted
        likelihood (a tree's splits are greedy, a neighbours model ignores
        it), so under them it can also fall from one iteration to the next.
    n_objective_falls_ : int
        Iterations that lowered the objective, restarts and the starts of
        moves left out: 0 for the built-in experts under EM (beyond rounding).
    dropped_experts_ : list of int
        Experts dropped by ``expert_failure="drop"``, by their index in the
        initial mixture; ``estimators_`` and the gate's columns hold the others.
    n_expert_restarts_ : int
        Experts restarted because their load fell under ``min_expert_load``.
    n_merges_ : int
        Accepted merge-and-split moves: two experts that predicted alike were
        merged and one of them restarted on the worst-fitted rows, which
        raised the objective.
    expert_load_ : ndarray of shape (n_experts,)
        Share of the training rows routed to each expert (a row counts
        ``1 / top_k`` towards each expert it is routed to; under a dense gate,
        1 towards its most probable expert). Sums to 1.
    expert_importance_ : ndarray of shape (n_experts,)
        Share of the training rows' gate probability mass held by each
        expert. Sums to 1.
    validation_scores_ : ndarray of shape (`n_iter_`,) or None
        Mean log-likelihood of the held-out rows after each iteration (or
        epoch), beside ``lower_bounds_``, with ``early_stopping``; None
        otherwise.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Defined only when X has feature names that are all strings.

    See Also
    --------
    MixtureOfExpertsClassifier : The classification counterpart.
    sklearn.mixture.GaussianMixture : EM for unsupervised mixtures.

    Examples
    --------
    >>> import numpy as np
    >>> from skmoe import MixtureOfExpertsRegressor
    >>> rng = np.random.RandomState(0)
    >>> X = rng.uniform(-3, 3, size=(400, 1))
    >>> y = np.where(X[:, 0] < 0, -2 * X[:, 0], 3 * X[:, 0]) + 0.1 * rng.randn(400)
    >>> reg = MixtureOfExpertsRegressor(n_experts=2, random_state=0).fit(X, y)
    >>> reg.score(X, y) > 0.99
    True
    >>> mean, std = reg.predict(X[:3], return_std=True)
    >>> reg.gate_proba(X[:3]).sum(axis=1)
    array([1., 1., 1.])
    """

    _parameter_constraints: dict = {
        **BaseMixtureOfExperts._parameter_constraints,
        "estimator": [HasMethods(["fit", "predict"]), list, None],
        "noise_floor": [Interval(Real, 0, None, closed="neither")],
    }

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
        noise_floor=1e-3,
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
        super().__init__(
            estimator,
            n_experts=n_experts,
            top_k=top_k,
            gate_noise=gate_noise,
            gate_alpha=gate_alpha,
            balance_loss=balance_loss,
            balance_coef=balance_coef,
            min_expert_load=min_expert_load,
            expert_alpha=expert_alpha,
            expert_hidden_units=expert_hidden_units,
            solver=solver,
            max_iter=max_iter,
            tol=tol,
            learning_rate_init=learning_rate_init,
            batch_size=batch_size,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change,
            n_init=n_init,
            init=init,
            warm_start=warm_start,
            n_jobs=n_jobs,
            expert_failure=expert_failure,
            random_state=random_state,
            verbose=verbose,
            verbose_interval=verbose_interval,
            device=device,
        )
        self.noise_floor = noise_floor

    def _prepare_target(self, y, sample_weight):
        return self._encode_target(y)

    def _make_likelihood(self, y, sample_weight, penalty_alpha):
        return GaussianLikelihood.from_target(
            y, sample_weight, noise_floor=self.noise_floor, penalty_alpha=penalty_alpha
        )

    def _encode_target(self, y):
        # validation gives y X's floating type, as Ridge does (on the device, always)
        if y.dtype in (np.float32, np.float64):
            return y
        return np.asarray(y, dtype=np.float64)

    def _set_params_attributes(self, noise_variance):
        self.noise_variance_ = noise_variance

    def _get_params_attributes(self):
        return self.noise_variance_

    def predict(self, X, return_std=False):
        """Mixture mean of y, and optionally its standard deviation.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        return_std : bool, default=False
            Also return the standard deviation of the predictive mixture,
            which adds the experts' disagreement to their noise.

        Returns
        -------
        y_mean : ndarray of shape (n_samples,)
            In X's floating type (float32 stays float32).
        y_std : ndarray of shape (n_samples,)
            Only when ``return_std`` is True; in X's floating type.
        """
        check_is_fitted(self)
        fused = not return_std and self._fused_predict()
        # a non-finite entry of X makes its row's prediction non-finite:
        # the fused path checks its output instead of X, a tenth of the time
        X_valid = self._validate_data(X, reset=False, device_finite_check=not fused)
        if fused:
            return like_input(self._predict_fused(X_valid), X)
        result = in_row_chunks(
            partial(self._mean_and_std, return_std=return_std), self._row_bytes(), X_valid
        )
        if not return_std:
            return like_input(result, X)
        return tuple(like_input(r, X) for r in result)

    @available_if(BaseMixtureOfExperts._online_fit_available)
    @_fit_context(prefer_skip_nested_validation=True)
    @keeps_state_on_failure
    def partial_fit(self, X, y, sample_weight=None):
        """One step of online EM on a chunk of rows, for data streamed in chunks.

        The first calls keep their rows and fit them all by batch EM, as
        :meth:`fit` would (k-means start, merge-and-split moves, restarts;
        a model fitted by :meth:`fit` is continued instead), until they hold
        20 rows per parameter of the mixture (at most 50,000): stepwise EM
        refines a mixture but cannot move an expert to a regime that others
        share, so it starts from a fit on enough rows to place every expert.
        The rows are then let go, and each call runs an E-step under the
        current parameters, moves the experts' sufficient statistics
        towards the chunk's (stepwise online EM, Cappé and Moulines, 2009)
        and refits the experts from them, and refits the gate to the chunk
        and the second-order expansions of its loss on the chunks before,
        three times per chunk; the gate predicted with is the average of its
        iterates. Each call also tries an online merge-and-split move on its
        chunk (the expert the chunk needs least restarted on half of the
        rows of the expert that fits its rows worst), which the next call
        keeps if it fits its own, unseen chunk significantly better. The
        method exists only with the built-in experts (``estimator=None``),
        ``solver="em"`` and one level of gating, and runs on the CPU.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            A chunk of training rows.
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : object
        """
        return self._partial_fit(X, y, sample_weight)

    def _mean_and_std(self, X, *, return_std):
        """The mixture's mean of y on validated rows, and its standard deviation."""
        gate, means = self.gate_.predict_proba(X), self._experts.predict(X)
        xp = get_namespace(means)
        y_mean = xp.einsum("nk,nk->n", gate, means)
        if not return_std:
            return y_mean
        noise_variance = self.noise_variance_.astype(means.dtype, copy=False)  # the rows' type
        spread = noise_variance + (means - y_mean[:, None]) ** 2
        return y_mean, xp.sqrt(xp.einsum("nk,nk->n", gate, spread))

    def _fused_predict(self):
        """Whether predict can take the GPU's one-GEMM, one-kernel path."""
        check_is_fitted(self)
        return (
            self._on_device
            and isinstance(self._experts, LinearExperts)
            and type(self.gate_) is SoftmaxGate
            and fused_predict_fits(len(self.estimators_))
        )

    def _predict_fused(self, X):
        """The mixture mean in one pass over X (see
        :func:`~skmoe._backend._predict.linear_mixture_mean`)."""
        y_mean = linear_mixture_mean(X, self.gate_, self._experts)
        if not all_finite(y_mean):
            check_device_finite(X)
        return y_mean
