"""Input checks shared by the text reports (:func:`expert_report`, :func:`gate_rules`)."""

import numpy as np
from sklearn.utils import get_tags
from sklearn.utils.validation import check_array, check_is_fitted


def check_rows(estimator, X):
    """``X`` as the estimator's experts were fitted on it, and each row's most
    probable expert; a NotFittedError or ValueError naming what is wrong.

    The experts were fitted on the validated array, not on a DataFrame, so
    they are given the array; the estimator itself gets ``X`` as passed, so that
    it checks the feature names it was fitted with.
    """
    check_is_fitted(estimator)
    allow_nan = get_tags(estimator).input_tags.allow_nan
    X_valid = check_array(
        X,
        accept_sparse=["csr", "csc"],
        dtype=[np.float64, np.float32],
        ensure_all_finite="allow-nan" if allow_nan else True,
    )
    if X_valid.shape[1] != estimator.n_features_in_:
        raise ValueError(
            f"X has {X_valid.shape[1]} features, but the estimator was fitted on "
            f"{estimator.n_features_in_}."
        )
    return X_valid, np.asarray(estimator.predict_expert(X))


def feature_names(estimator):
    """The estimator's feature names, or ``x0, x1, ...`` when it was fitted without."""
    names = getattr(estimator, "feature_names_in_", None)
    if names is None:
        return [f"x{j}" for j in range(estimator.n_features_in_)]
    return [str(name) for name in names]
