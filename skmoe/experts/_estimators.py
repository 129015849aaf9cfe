"""Experts that are arbitrary scikit-learn estimators, refitted with row weights."""

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import clone, is_classifier
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.pipeline import Pipeline
from sklearn.utils import check_random_state
from sklearn.utils.validation import has_fit_parameter

from .._backend import get_namespace, is_cupy_array, to_numpy
from .._backend._products import column_sum
from .._compat import _routing_enabled, _safe_indexing

_MAX_SEED = np.iinfo(np.int32).max


def set_random_states(estimator, random_state):
    """Give every ``random_state`` parameter of ``estimator`` its own fixed seed."""
    rng = check_random_state(random_state)
    seeds = {
        key: rng.randint(_MAX_SEED)
        for key in sorted(estimator.get_params(deep=True))
        if key == "random_state" or key.endswith("__random_state")
    }
    if seeds:
        estimator.set_params(**seeds)
    return estimator


def weight_parameter(estimator):
    """The name under which ``estimator.fit`` takes row weights, or None.

    ``"sample_weight"`` where ``fit`` has it; for a :class:`~sklearn.pipeline.Pipeline`
    whose last step takes weights, ``"<step>__sample_weight"`` (or, with
    scikit-learn's metadata routing on, ``"sample_weight"``, which the
    pipeline routes to the steps that request it).
    """
    if has_fit_parameter(estimator, "sample_weight"):
        return "sample_weight"
    if isinstance(estimator, Pipeline):
        name, last = estimator.steps[-1]
        inner = None if last in (None, "passthrough") else weight_parameter(last)
        if inner is not None:
            return "sample_weight" if _routing_enabled() else f"{name}__{inner}"
    return None


def takes_device_arrays(estimator):
    """Whether ``estimator`` fits and predicts on CuPy arrays itself: a cuML
    estimator, or one whose ``device`` parameter names the GPU (XGBoost's
    ``device="cuda"``, skmoe's own). In a GPU fit the others are given host
    copies of their rows."""
    device = str(estimator.get_params(deep=False).get("device", ""))
    return device.startswith(("cuda", "gpu")) or type(estimator).__module__.startswith("cuml")


def _routed_rows(weight):
    """The rows that carry weight, as an index on ``weight``'s device; None
    where none does. Weights under the largest one's rounding error cannot
    move a weighted fit."""
    top = weight.max()
    if not top > 0:
        return None
    return get_namespace(weight).flatnonzero(weight > top * np.finfo(weight.dtype).eps)


def _take(X, rows):
    """The ``rows`` of X: NumPy, sparse or pandas on the host, CuPy on the GPU."""
    return X[rows] if is_cupy_array(X) else _safe_indexing(X, rows)


def _host_stand_in(X):
    """X as a placeholder's fit reads it, which is y alone: host X as it
    is; for CuPy X, its first row moved to the host and repeated (a view,
    no copy of X)."""
    return np.broadcast_to(to_numpy(X[:1]), X.shape) if is_cupy_array(X) else X


def _fit_expert(template, X, y, weight, seed):
    """Fit a clone of ``template`` to the rows that carry weight.

    Module-level so that any joblib backend can ship it to a worker. Estimators
    that take no row weights (see :func:`weight_parameter`) get a weighted
    bootstrap instead: as many rows as carry weight, drawn with probability
    proportional to it. The arrays are on the host, or on the GPU for an
    estimator that takes them there (see :func:`takes_device_arrays`).
    """
    rows = _routed_rows(weight)
    if rows is None:
        # routed no rows (a restart took them): a placeholder that predicts
        # the data's mean or class shares, until EM hands it rows again
        placeholder = (
            DummyClassifier(strategy="prior") if is_classifier(template) else DummyRegressor()
        )
        return placeholder.fit(_host_stand_in(X), to_numpy(y))
    # taken even where every row is routed: the copy is C-contiguous, which
    # some estimators' fits need (SVR's libsvm refuses other layouts)
    X, y, weight = _take(X, rows), y[rows], weight[rows]
    estimator = clone(template)
    fit_params = {}
    name = weight_parameter(estimator)
    if name is not None:
        fit_params[name] = weight
    else:
        rng = np.random.RandomState(seed)
        drawn = rng.choice(len(rows), size=len(rows), p=to_numpy(weight / weight.sum()))
        drawn = get_namespace(weight).asarray(drawn)
        X, y = _take(X, drawn), y[drawn]
    if is_classifier(estimator) and get_namespace(y).unique(y).size < 2:
        # An expert routed rows of one class only: it predicts that class,
        # where most classifiers would refuse to fit.
        estimator, fit_params = DummyClassifier(strategy="prior"), {}
        X, y = (to_numpy(a) for a in (X, y))
    return estimator.fit(X, y, **fit_params)


def _expert_data(template, X, y, weight):
    """``(X, y, weight)`` as ``template``'s fit is given them: as they are
    on the host, or on the GPU for an estimator that takes device arrays;
    else host copies of only its routed rows (of y alone, where no row is
    routed: the placeholder reads nothing else)."""
    if not is_cupy_array(X) or takes_device_arrays(template):
        return X, y, weight
    rows = _routed_rows(weight)
    if rows is None:
        return _host_stand_in(X), to_numpy(y), to_numpy(weight)
    return to_numpy(X[rows]), to_numpy(y[rows]), to_numpy(weight[rows])


def _fit_or_error(template, X, y, weight, seed):
    """:func:`_fit_expert`, returning the error it raised instead of raising
    it: then whatever the joblib backend, the caller learns which experts
    failed, and keeps the others' fits."""
    try:
        return _fit_expert(template, X, y, weight, seed)
    except Exception as error:  # the caller re-raises it, naming the expert
        return error


class ExpertFitError(RuntimeError):
    """Some experts' fits or predictions raised, or gave non-finite outputs.

    Attributes
    ----------
    errors : dict
        The error of each failed expert, by its index.
    """

    def __init__(self, errors, weight_mass=None):
        self.errors = errors
        self.details = "; ".join(
            f"expert {k}{'' if weight_mass is None else f' (weight mass {weight_mass[k]:.4g})'} "
            f"failed: {type(e).__name__}: {e}"
            for k, e in errors.items()
        )
        super().__init__(f"{self.details}. With expert_failure='drop' a fit drops it and goes on.")

    def as_raised(self):
        """This error as one of the first failed expert's error type, so that
        callers catching, say, ValueError still catch it; itself if that type
        cannot be built from a message."""
        first = next(iter(self.errors.values()))
        try:
            error = type(first)(str(self))
        except Exception:
            return self
        error.__cause__ = first
        return error


class EstimatorExperts:
    """K scikit-learn estimators refitted each M-step with their own row weights.

    Expert ``k`` is a clone of ``templates[k]`` fitted on the rows whose weight
    ``weights[:, k]`` is positive. Classifiers are fitted on class indices
    ``0 .. n_classes - 1`` and their probabilities are aligned to those indices,
    so an expert that saw only some classes gives 0 to the others.

    X reaches the estimators as it is (float32 stays float32); what type they
    compute in is theirs. Their outputs are cast to X's floating type, the
    type of the mixture's arithmetic.

    In a GPU fit (CuPy X), estimators that take device arrays (see
    :func:`takes_device_arrays`) are fitted and predict on them; the others
    are fitted on host copies of their routed rows, and predict on one host
    copy of X that they share. Their outputs join the mixture on the GPU.
    """

    def __init__(self, templates, *, n_classes=None, n_jobs=None):
        self.templates = templates
        self.n_classes = n_classes
        self.n_jobs = n_jobs

    @property
    def n_experts(self):
        return len(self.templates)

    def fit(self, X, y, weights, random_state=None):
        """Refit every expert; ``weights`` has shape (n_samples, n_experts)."""
        seeds = check_random_state(random_state).randint(_MAX_SEED, size=self.n_experts)
        self.estimators_ = Parallel(n_jobs=self.n_jobs)(
            delayed(_fit_or_error)(template, *_expert_data(template, X, y, weights[:, k]), seeds[k])
            for k, template in enumerate(self.templates)
        )
        errors = {k: e for k, e in enumerate(self.estimators_) if isinstance(e, Exception)}
        if errors:
            mass = to_numpy(column_sum(weights))
            raise ExpertFitError(errors, mass) from next(iter(errors.values()))
        return self

    def drop(self, experts):
        """Remove the experts at the indices ``experts``."""
        keep = [k for k in range(self.n_experts) if k not in experts]
        self.templates = [self.templates[k] for k in keep]
        self.estimators_ = [self.estimators_[k] for k in keep]
        return self

    def _outputs(self, method, X):
        """Each expert's ``method(X)``, on X's device; raises
        :class:`ExpertFitError` naming every expert whose method raised, as
        a failed fit does."""
        xp = get_namespace(X)
        outputs, errors, host = [], {}, None
        for k, est in enumerate(self.estimators_):
            rows = X
            if xp is not np and not takes_device_arrays(est):
                host = rows = to_numpy(X) if host is None else host
            try:
                outputs.append(xp.asarray(getattr(est, method)(rows)))
            except Exception as error:  # re-raised below, naming the expert
                errors[k] = error
        if errors:
            raise ExpertFitError(errors) from next(iter(errors.values()))
        return outputs

    def predict(self, X):
        """Every expert's prediction, shape (n_samples, n_experts), in X's
        floating type."""
        xp = get_namespace(X)
        return xp.column_stack(self._outputs("predict", X)).astype(X.dtype)

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_experts, n_classes), in X's
        floating type."""
        xp = get_namespace(X)
        proba = xp.zeros((X.shape[0], self.n_experts, self.n_classes), dtype=X.dtype)
        outputs = self._outputs("predict_proba", X)
        for k, (est, p) in enumerate(zip(self.estimators_, outputs, strict=True)):
            proba[:, k, xp.asarray(est.classes_)] = p
        return proba

    def squared_norms(self):
        """No penalty is known for arbitrary estimators."""
        return np.zeros(self.n_experts)

    def to_estimators(self):
        return list(self.estimators_)
