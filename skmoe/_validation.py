"""Input checks of the estimators: X and y on the host or the device, sample
weights, and results given back as the kind of array the input was."""

import numpy as np
import scipy.sparse as sp
from sklearn.base import is_classifier
from sklearn.utils import get_tags
from sklearn.utils.validation import check_array, column_or_1d, validate_data

from ._backend import check_device_finite, get_namespace, is_cupy_array, require_cupy, to_numpy
from ._compat import _check_feature_names, _check_n_features, _check_sample_weight


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


def fits_on_device(model, X):
    """Whether ``model``'s fit on ``X`` runs on the GPU: ``device="cuda"``,
    or CuPy input."""
    return model.device == "cuda" or is_cupy_array(X)


def check_data(model, X, y, *, reset, on_device, finite_check=True):
    """``validate_data`` with what the gate and the experts accept; with
    ``on_device`` the same checks, with the arrays moved to the GPU (run there
    for CuPy input). A caller that finds non-finite rows in its own results
    may skip the pass over CuPy X (``finite_check=False``)."""
    if is_cupy_array(X):
        if on_device:
            return _check_device_data(model, X, y, reset=reset, finite_check=finite_check)
        X = to_numpy(X)  # a CPU fit predicts on the CPU
    result = validate_data(
        model,
        X,
        y,
        accept_sparse=["csr", "csc"],
        dtype=[np.float64, np.float32],
        ensure_all_finite="allow-nan" if get_tags(model).input_tags.allow_nan else True,
        reset=reset,
    )
    if isinstance(result, tuple) and not is_classifier(model):
        # a regression target takes X's floating type, as Ridge's does
        # (checked again: a finite float64 can round to float32's infinity)
        X_valid, y_valid = result
        y_valid = check_array(y_valid, dtype=X_valid.dtype, ensure_2d=False, input_name="y")
        result = X_valid, y_valid
    return _to_device(result, classifier=is_classifier(model)) if on_device else result


def like_input(result, X):
    """``result`` as the kind of array ``X`` is: NumPy in, NumPy out; CuPy in,
    CuPy out, whichever device computed it."""
    if is_cupy_array(X):
        return get_namespace(X).asarray(result)
    return to_numpy(result)


def _to_device(validated, *, classifier):
    """Validated host data, ``X`` or ``(X, y)``, with ``X`` moved to the GPU.
    A regression target moves with it, in ``X``'s floating type; a
    classifier's labels stay on the host, where they are encoded (the fit
    moves the codes)."""
    cupy = require_cupy()
    X, y = validated if isinstance(validated, tuple) else (validated, None)
    if sp.issparse(X):
        raise TypeError("device='cuda' takes dense X; sparse input is fitted on the CPU.")
    X = cupy.asarray(X)
    if y is None:
        return X
    return X, (y if classifier else cupy.asarray(y, dtype=X.dtype))


def _check_device_data(model, X, y, *, reset, finite_check):
    """The checks of :func:`check_data` for CuPy input, run on the device."""
    cupy = require_cupy()
    _check_feature_names(model, X, reset=reset)
    if X.ndim != 2:
        raise ValueError(f"Expected a 2-dimensional array, got {X.ndim} dimension(s).")
    if X.dtype not in (cupy.float32, cupy.float64):
        X = X.astype(cupy.float64)
    if finite_check:
        check_device_finite(X)
    _check_n_features(model, X, reset=reset)
    if isinstance(y, str) and y == "no_validation":
        return X
    if is_classifier(model):
        # 1-D CuPy labels stay where they are, to be encoded there; others
        # are checked and encoded on the host (see _to_device)
        if not (is_cupy_array(y) and y.ndim == 1):
            y = column_or_1d(to_numpy(y), warn=True)
    else:
        y = cupy.asarray(y, dtype=X.dtype)
        if not bool(cupy.isfinite(y).all()):
            raise ValueError("Input y contains NaN or infinity.")
    if y.shape != (X.shape[0],):
        raise ValueError(f"y must have shape ({X.shape[0]},), got {y.shape}.")
    return X, y
