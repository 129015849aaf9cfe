"""Readable rules for where a fitted mixture's gate sends rows: a shallow
decision tree that imitates ``predict_expert``."""

from dataclasses import dataclass
from numbers import Integral

from sklearn.tree import DecisionTreeClassifier, export_text

from .._compat import HasMethods, Interval, validate_params
from ._checks import check_rows, feature_names


@dataclass(frozen=True)
class GateRules:
    """A surrogate decision tree of a mixture's gate, and its rules as text.

    ``str(rules)`` is ``rules.text``.

    Parameters
    ----------
    tree : DecisionTreeClassifier
        The fitted surrogate: its classes are the expert indices it was
        fitted to.
    fidelity : float
        Share of the rows on which the tree picks the same expert as the
        gate (``predict_expert``), in [0, 1]. The rules describe the gate
        only as far as this is close to 1.
    text : str
        The tree's rules, from :func:`sklearn.tree.export_text`, each leaf
        naming its expert (``class: expert 2``). A split may leave the same
        expert on both sides: it made the leaves purer without changing
        their majority.
    feature_names : list of str
        The feature names the rules use: the estimator's ``feature_names_in_``,
        or ``x0, x1, ...``. Pass them to :func:`~sklearn.tree.export_text`
        or :func:`~sklearn.tree.plot_tree` to render ``tree`` otherwise.

    See Also
    --------
    gate_rules : Fit the surrogate tree of a fitted mixture.
    """

    tree: DecisionTreeClassifier
    fidelity: float
    text: str
    feature_names: list

    def __str__(self):
        return self.text


@validate_params(
    {
        "estimator": [HasMethods(["predict_expert"])],
        "X": ["array-like", "sparse matrix"],
        "max_depth": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def gate_rules(estimator, X, *, max_depth=3, random_state=None):
    """Readable rules for where a fitted mixture's gate sends rows.

    The softmax gate splits the input space by linear boundaries in all
    features at once. A shallow :class:`~sklearn.tree.DecisionTreeClassifier`
    fitted to the gate's choices (``predict_expert(X)``) restates them as a
    few thresholds on single features; its fidelity, the share of rows on
    which it agrees with the gate, says how far the rules can be trusted.
    Gates whose regions are not aligned with the axes need a deeper tree.

    Parameters
    ----------
    estimator : MixtureOfExpertsRegressor or MixtureOfExpertsClassifier
        A fitted mixture.
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        Rows to fit the surrogate on and measure its fidelity with, with the
        features the estimator was fitted on: typically the training rows.
    max_depth : int, default=3
        Depth of the surrogate tree: at most ``2 ** max_depth`` rules.
    random_state : int, RandomState instance or None, default=None
        Passed to the tree, which breaks ties between equally good splits at
        random. Pass an int for the same rules every time.

    Returns
    -------
    rules : GateRules
        The fitted ``tree``, its ``fidelity`` and its rules as ``text``.

    Raises
    ------
    NotFittedError
        If the estimator is not fitted.
    ValueError
        If ``estimator`` has no ``predict_expert``, ``X`` has other features
        than it was fitted on, or ``max_depth < 1``.

    See Also
    --------
    expert_report : Share, error and coefficients of each expert.
    GateDisplay : The gate's regions over two features.

    Examples
    --------
    Two regimes split at ``x0 = 0``, each with its own linear law:

    >>> import numpy as np
    >>> from skmoe import MixtureOfExpertsRegressor
    >>> from skmoe.inspection import gate_rules
    >>> rng = np.random.RandomState(0)
    >>> X = rng.uniform(-1, 1, size=(400, 3))
    >>> X[:, 0] += np.sign(X[:, 0])  # no row near the boundary x0 = 0
    >>> y = np.where(X[:, 0] < 0, 2 * X[:, 1] - X[:, 2], 1 - 3 * X[:, 2])
    >>> y += 0.1 * rng.randn(400)
    >>> reg = MixtureOfExpertsRegressor(n_experts=2, random_state=0).fit(X, y)
    >>> rules = gate_rules(reg, X, max_depth=2, random_state=0)
    >>> rules.fidelity
    1.0
    >>> print(rules)
    |--- x0 <= 0.00
    |   |--- class: expert 0
    |--- x0 >  0.00
    |   |--- class: expert 1
    <BLANKLINE>
    """
    X_valid, experts = check_rows(estimator, X)
    tree = DecisionTreeClassifier(max_depth=max_depth, random_state=random_state)
    tree.fit(X_valid, experts)
    names = feature_names(estimator)
    text = export_text(
        tree, feature_names=names, class_names=[f"expert {k}" for k in tree.classes_]
    )
    return GateRules(
        tree=tree, fidelity=float(tree.score(X_valid, experts)), text=text, feature_names=names
    )
