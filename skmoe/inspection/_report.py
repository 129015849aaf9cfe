"""Report in words of what each expert of a fitted mixture handles."""

from dataclasses import dataclass
from numbers import Integral

import numpy as np
from sklearn.base import is_classifier
from sklearn.utils.validation import check_array, column_or_1d

from .._compat import HasMethods, Interval, validate_params
from ._checks import check_rows, feature_names


@dataclass(frozen=True)
class ExpertSummary:
    """One expert's entry in an :class:`ExpertReport`.

    Parameters
    ----------
    expert : int
        Index of the expert in ``estimators_`` and in the gate's columns.
    share : float
        Share of the rows whose most probable expert it is
        (``predict_expert``).
    metric : float
        The expert's own error or score on those rows, as ``metric_name``
        says; NaN when it handles none.
    metric_name : {"rmse", "accuracy"}
        "rmse" (root mean squared error) for a regressor, "accuracy" for a
        classifier.
    coefficients : tuple of (str, float) or None
        The expert's largest coefficients (``coef_``) by absolute value,
        largest first, as ``(feature name, coefficient)`` pairs; the
        intercept is left out. A binary logistic expert's coefficients are
        those of the second class's logit (``classes_[1]``); a multiclass
        one has a row per class, and the name also gives the class,
        ``"x0 (class b)"``. The coefficients apply to the features as given,
        so their sizes compare across features only if the features share a
        scale. None for an expert without linear coefficients, such as a
        tree or a network with a hidden layer.

    See Also
    --------
    expert_report : Build the summaries of a fitted mixture.
    """

    expert: int
    share: float
    metric: float
    metric_name: str
    coefficients: tuple | None


@dataclass(frozen=True)
class ExpertReport:
    """What each expert of a mixture handles: a sequence of :class:`ExpertSummary`.

    Iterate over it, index it by expert or print it as a table
    (:meth:`to_text`, also ``str(report)``).

    Parameters
    ----------
    experts : tuple of ExpertSummary
        One summary per expert, in the order of ``estimators_``.
    n_samples : int
        Number of rows the report was computed on.

    See Also
    --------
    expert_report : Build the report of a fitted mixture.
    """

    experts: tuple
    n_samples: int

    def __len__(self):
        return len(self.experts)

    def __iter__(self):
        return iter(self.experts)

    def __getitem__(self, index):
        return self.experts[index]

    def __str__(self):
        return self.to_text()

    def to_text(self, decimals=3):
        """The report as a table, one line per expert.

        Parameters
        ----------
        decimals : int, default=3
            Digits after the decimal point of the shares, metrics and
            coefficients.

        Returns
        -------
        text : str
            Columns expert, share, the metric and the largest coefficients
            ("-" for an expert without coefficients).
        """
        metric_name = self.experts[0].metric_name if self.experts else "metric"
        header = ("expert", "share", metric_name, "largest coefficients")
        rows = [
            (
                str(s.expert),
                f"{s.share:.{decimals}f}",
                f"{s.metric:.{decimals}f}",
                _format_coefficients(s.coefficients, decimals),
            )
            for s in self.experts
        ]
        # right-aligned numbers under their headers; the last column free
        widths = [max(len(row[j]) for row in [header, *rows]) for j in range(3)]
        return "\n".join(
            "  ".join([*(cell.rjust(w) for cell, w in zip(row, widths, strict=False)), row[3]])
            for row in [header, *rows]
        )


def _format_coefficients(coefficients, decimals):
    if coefficients is None:
        return "-"
    return ", ".join(f"{name}={value:+.{decimals}f}" for name, value in coefficients)


def _check_target(y, n_samples, classifier):
    """``y`` as a 1-D array of ``n_samples`` values, or a ValueError."""
    if classifier:
        y = column_or_1d(check_array(y, ensure_2d=False, dtype=None, input_name="y"))
    else:
        y = column_or_1d(check_array(y, ensure_2d=False, dtype=np.float64, input_name="y"))
    if y.shape[0] != n_samples:
        raise ValueError(f"y has {y.shape[0]} values, but X has {n_samples} rows.")
    return y


def _metric(estimator, expert, X_rows, y_rows):
    """The expert's RMSE (regressor) or accuracy (classifier) on its rows."""
    if y_rows.shape[0] == 0:
        return float("nan")
    if is_classifier(estimator):
        # the experts were trained on class indices 0 .. n_classes - 1
        predicted = estimator.classes_[np.asarray(expert.predict(X_rows), dtype=np.intp)]
        return float(np.mean(predicted == y_rows))
    residuals = y_rows - np.asarray(expert.predict(X_rows), dtype=np.float64)
    return float(np.sqrt(np.mean(residuals**2)))


def _largest_coefficients(estimator, expert, names, n_coefficients):
    """The expert's ``n_coefficients`` largest coefficients by absolute value,
    as (name, value) pairs; None when it has no coefficients per feature."""
    coef = getattr(expert, "coef_", None)
    if coef is None:
        return None
    coef = np.asarray(coef, dtype=np.float64)
    if coef.ndim > 2 or coef.shape[-1] != len(names):
        return None  # not one coefficient per feature (and class): nothing to name
    if coef.ndim == 1 or coef.shape[0] == 1:
        labels = names  # a regressor, or a binary classifier's logit of its second class
    else:
        # one row per class the expert knows, by index into the mixture's classes
        classes = estimator.classes_[np.asarray(expert.classes_, dtype=np.intp)]
        labels = [f"{name} (class {label})" for label in classes for name in names]
    values = coef.ravel()
    # stable: equal magnitudes keep the features' order
    order = np.argsort(-np.abs(values), kind="stable")[:n_coefficients]
    return tuple((labels[i], float(values[i])) for i in order)


@validate_params(
    {
        "estimator": [HasMethods(["predict_expert"])],
        "X": ["array-like", "sparse matrix"],
        "y": ["array-like"],
        "n_coefficients": [Interval(Integral, 1, None, closed="left")],
    },
    prefer_skip_nested_validation=True,
)
def expert_report(estimator, X, y, *, n_coefficients=3):
    """Each expert's share of the rows, its fit on them and its largest coefficients.

    A row is handled by its most probable expert (``predict_expert``), as
    ``expert_load_`` counts rows under a dense gate. For each expert the
    report gives its share of the rows of ``X``, how well the expert alone
    (not the mixture) fits them (regressor: root mean squared error of
    ``estimators_[k].predict``; classifier: accuracy of ``estimators_[k]``'s
    predicted classes) and, for
    experts with linear coefficients (the built-in ridge and logistic
    experts, or a wrapped linear model), the largest of them by absolute
    value. With many features, where a picture of two of them says little,
    this tells what each expert is for.

    Parameters
    ----------
    estimator : MixtureOfExpertsRegressor or MixtureOfExpertsClassifier
        A fitted mixture.
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        Rows to route, with the features the estimator was fitted on.
    y : array-like of shape (n_samples,)
        Their targets (class labels for a classifier).
    n_coefficients : int, default=3
        How many coefficients to list per expert (all of them if the expert
        has fewer). Feature names are the estimator's ``feature_names_in_``, or
        ``x0, x1, ...``.

    Returns
    -------
    report : ExpertReport
        One :class:`ExpertSummary` per expert, in the order of
        ``estimators_``; ``print(report)`` shows them as a table.

    Raises
    ------
    NotFittedError
        If the estimator is not fitted.
    ValueError
        If ``estimator`` has no ``predict_expert``, ``X`` has other features
        than it was fitted on, ``y`` has another length than ``X`` or
        ``n_coefficients < 1``.

    See Also
    --------
    gate_rules : Readable rules for where the gate sends rows.
    ExpertUsageDisplay : Bars of each expert's load and importance.

    Examples
    --------
    Two regimes split at ``x0 = 0``, each with its own linear law:

    >>> import numpy as np
    >>> from skmoe import MixtureOfExpertsRegressor
    >>> from skmoe.inspection import expert_report
    >>> rng = np.random.RandomState(0)
    >>> X = rng.uniform(-1, 1, size=(400, 3))
    >>> X[:, 0] += np.sign(X[:, 0])  # no row near the boundary x0 = 0
    >>> y = np.where(X[:, 0] < 0, 2 * X[:, 1] - X[:, 2], 1 - 3 * X[:, 2])
    >>> y += 0.1 * rng.randn(400)
    >>> reg = MixtureOfExpertsRegressor(n_experts=2, random_state=0).fit(X, y)
    >>> report = expert_report(reg, X, y, n_coefficients=1)
    >>> print(report)
    expert  share   rmse  largest coefficients
         0  0.530  0.095  x1=+1.979
         1  0.470  0.099  x2=-2.944
    >>> report[1].share, report[1].coefficients[0][0]
    (0.47, 'x2')
    """
    X_valid, experts = check_rows(estimator, X)
    classifier = is_classifier(estimator)
    y = _check_target(y, X_valid.shape[0], classifier)
    names = feature_names(estimator)
    n_samples = X_valid.shape[0]
    summaries = []
    for k, expert in enumerate(estimator.estimators_):
        rows = np.flatnonzero(experts == k)
        summaries.append(
            ExpertSummary(
                expert=k,
                share=rows.size / n_samples,
                metric=_metric(estimator, expert, X_valid[rows], y[rows]),
                metric_name="accuracy" if classifier else "rmse",
                coefficients=_largest_coefficients(estimator, expert, names, n_coefficients),
            )
        )
    return ExpertReport(experts=tuple(summaries), n_samples=n_samples)
