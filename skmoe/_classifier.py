"""Mixture-of-experts classification."""

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from ._backend import get_namespace, is_cupy_array, to_numpy
from ._base import BaseMixtureOfExperts, keeps_state_on_failure
from ._chunks import in_row_chunks
from ._compat import HasMethods, StrOptions, _fit_context
from ._likelihood import CategoricalLikelihood
from ._validation import like_input


def _encoded_labels(y):
    """The sorted classes of labels ``y`` (on the host) and each row's index
    into them. CuPy labels are encoded on the device: only their distinct
    values come to the host, where the target's checks see them (its type,
    binary, multiclass or continuous, is that of its distinct values)."""
    if is_cupy_array(y):
        classes = get_namespace(y).unique(y)
        check_classification_targets(to_numpy(classes))
        return to_numpy(classes), get_namespace(y).searchsorted(classes, y)
    check_classification_targets(y)
    encoder = LabelEncoder().fit(y)
    return encoder.classes_, encoder.transform(y)


class MixtureOfExpertsClassifier(ClassifierMixin, BaseMixtureOfExperts):
    """Mixture of experts for classification, trained by EM.

    The model is ``P(y | x) = sum_k g_k(x) P_k(y | x)``: a softmax gate ``g``
    chooses, per row, how much each expert classifier ``P_k`` answers. EM
    alternates an E-step (each row's responsibilities: the posterior over
    experts given its true class) and an M-step that refits the gate to the
    responsibilities and each expert with them as sample weights.

    Parameters
    ----------
    estimator : classifier, list of classifiers or None, default=None
        The experts; each must have ``fit`` and ``predict_proba``. None:
        built-in logistic-regression experts, all K solved in one batched
        call. One classifier: cloned ``n_experts`` times, each clone with its
        own ``random_state``. A list: one expert per element. Classifiers whose
        ``fit`` takes no ``sample_weight`` are fitted on a weighted bootstrap
        of their rows; an expert routed rows of a single class predicts that
        class (a :class:`~sklearn.dummy.DummyClassifier` stands in for it).
        They are given X as it is (float32 stays float32) and compute in
        whatever type they do; their probabilities enter the mixture in X's
        type.
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
        L2 penalty of the built-in logistic experts: each is
        ``LogisticRegression(C=1 / expert_alpha)`` (with ``solver="gradient"``,
        an L2 penalty on the network experts' weights). "auto" (``solver="em"``):
        at each M-step each expert's own penalty takes one step of MacKay's
        evidence fixed point, as ``gate_alpha="auto"`` does for the gate; each
        :class:`~sklearn.linear_model.LogisticRegression` of ``estimators_``
        carries the ``C`` of its last penalty. Ignored when ``estimator`` is
        given.
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes, ``{class_label: weight}``, multiplying each
        row's ``sample_weight``; a class left out weighs 1. "balanced" weighs
        each class ``n_samples / (n_classes * np.bincount(y))``, counting rows
        as :class:`~sklearn.linear_model.LogisticRegression` does (not their
        ``sample_weight``). ``partial_fit`` takes a dict only: a chunk does
        not tell the classes' shares of the stream.
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
    classes_ : ndarray of shape (n_classes,)
        The class labels.
    gate_ : SoftmaxGate
        The fitted gate.
    estimators_ : list of classifiers
        The K fitted experts, trained on class indices ``0 .. n_classes - 1``.
        For the built-in experts, :class:`~sklearn.linear_model.LogisticRegression`
        objects that carry the coefficients of the batched solve, in the
        floating type of the X fitted (float32 for float32 X, as
        LogisticRegression's own).
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
    MixtureOfExpertsRegressor : The regression counterpart.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skmoe import MixtureOfExpertsClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = MixtureOfExpertsClassifier(n_experts=2, random_state=0).fit(X, y)
    >>> clf.predict_proba(X[:2]).shape
    (2, 3)
    >>> clf.score(X, y) > 0.95
    True
    """

    _parameter_constraints: dict = {
        **BaseMixtureOfExperts._parameter_constraints,
        "estimator": [HasMethods(["fit", "predict_proba"]), list, None],
        "class_weight": [dict, StrOptions({"balanced"}), None],
    }
    _required_methods = ("fit", "predict_proba")

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
        class_weight=None,
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
        self.class_weight = class_weight

    def _prepare_target(self, y, sample_weight):
        classes, codes = _encoded_labels(y)
        if self.warm_start and hasattr(self, "classes_"):
            if not np.array_equal(classes, self.classes_):
                raise ValueError(
                    f"warm_start needs the classes of the previous fit, {self.classes_}, "
                    f"got {classes}."
                )
        self.classes_ = classes
        if self.classes_.size < 2:
            raise ValueError(
                "This solver needs samples of at least 2 classes in the data, but the "
                f"data contains only one class: {self.classes_[0]!r}"
            )
        return codes

    def _weigh_target(self, y, sample_weight, *, online=False):
        if self.class_weight is None:
            return sample_weight
        if isinstance(self.class_weight, str) and online:
            raise ValueError(
                "class_weight='balanced' needs the classes' shares of all rows, which "
                "partial_fit does not see; give a dict of class weights."
            )
        if isinstance(self.class_weight, dict):
            unknown = [c for c in self.class_weight if c not in self.classes_]
            if unknown:
                raise ValueError(
                    f"class_weight names classes not among the classes {self.classes_}: {unknown}."
                )
        y = to_numpy(y)  # the weights are looked up where sample_weight is
        weights = compute_class_weight(self.class_weight, classes=self.classes_, y=self.classes_[y])
        sample_weight = sample_weight * weights[y]
        if not sample_weight.sum() > 0:
            raise ValueError("class_weight leaves every row with weight 0.")
        return sample_weight

    def _prepare_online_target(self, y, sample_weight, classes):
        if classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit.")
        self.classes_ = np.unique(classes)
        if self.classes_.size < 2:
            raise ValueError(f"classes must hold at least 2 classes, got {self.classes_}.")
        return self._encode_target(y)

    def _make_likelihood(self, y, sample_weight, penalty_alpha):
        return CategoricalLikelihood(len(self.classes_), penalty_alpha)

    @available_if(BaseMixtureOfExperts._online_fit_available)
    @_fit_context(prefer_skip_nested_validation=True)
    @keeps_state_on_failure
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One step of online EM on a chunk of rows, for data streamed in chunks.

        As :meth:`MixtureOfExpertsRegressor.partial_fit` (batch EM on the
        first rows until they are enough, then stepwise EM with online
        moves), for the built-in logistic experts: logistic regression has no
        finite sufficient
        statistics, so each chunk's loss enters as its second-order expansion
        at the parameters when the chunk is seen, and each M-step solves the
        running sums (a Newton step on the approximated loss of all chunks).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            A chunk of training rows.
        y : array-like of shape (n_samples,)
        classes : array-like of shape (n_classes,), default=None
            Every class the stream will hold; needed at the first call only.
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : object
        """
        return self._partial_fit(X, y, sample_weight, classes)

    def _encode_target(self, y):
        unknown = ~np.isin(y, self.classes_)
        if np.any(unknown):
            raise ValueError(f"y contains labels not seen in fit: {np.unique(y[unknown])}")
        return np.searchsorted(self.classes_, y)

    def predict_proba(self, X):
        """Class probabilities of the mixture, ``sum_k g_k(x) P_k(y | x)``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Columns follow ``classes_``; rows sum to 1. In X's floating type
            (float32 stays float32).
        """
        check_is_fitted(self)
        X_valid = self._validate_data(X, reset=False)
        return like_input(in_row_chunks(self._proba_rows, self._row_bytes(), X_valid), X)

    def _proba_rows(self, X):
        """The mixture's class probabilities on validated rows."""
        gate, proba = self.gate_.predict_proba(X), self._experts.predict_proba(X)
        return get_namespace(proba).einsum("nk,nkc->nc", gate, proba)

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            Columns follow ``classes_``; ``-inf`` where every expert routed the
            row gives the class probability 0. In X's floating type.
        """
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """Most probable class of each row.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,)
        """
        best = to_numpy(self.predict_proba(X).argmax(axis=1))
        labels = self.classes_[best]
        # CuPy holds numbers only: other labels come back as NumPy
        return like_input(labels, X) if labels.dtype.kind in "biuf" else labels
