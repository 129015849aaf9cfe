"""The input standardisation shared by the gate and the network experts, on
either device: scikit-learn's StandardScaler on the host; for CuPy rows,
which it does not take, the same statistics and transform on the device."""

import numpy as np
import scipy.sparse as sp
from sklearn.preprocessing import StandardScaler

from . import DEVICE_SLICE_ROWS, get_namespace, is_cupy_array, to_numpy


def _scaler(**params):
    """A StandardScaler whose transform returns arrays whatever the user's
    ``set_output`` configuration: its output is the gate's, not the user's."""
    return StandardScaler(**params).set_output(transform="default")


def fit_scaler(X, sample_weight):
    """A StandardScaler fitted with row weights; it centres dense input only.

    For CuPy input the weighted moments are computed on the device and stored
    in the scaler as NumPy arrays, as StandardScaler itself would.
    """
    if is_cupy_array(X):
        return _fit_on_device(X, sample_weight)
    return _scaler(with_mean=not sp.issparse(X)).fit(X, sample_weight=sample_weight)


def _fit_on_device(X, sample_weight):
    """A StandardScaler of CuPy X's weighted moments, computed on the device."""
    total = sample_weight.sum()
    mean = sample_weight @ X / total
    var = get_namespace(X).zeros_like(mean)
    for i in range(0, X.shape[0], DEVICE_SLICE_ROWS):  # a slice's squares, not all of X's
        centred = X[i : i + DEVICE_SLICE_ROWS] - mean
        centred *= centred
        var += sample_weight[i : i + DEVICE_SLICE_ROWS] @ centred
    var /= total
    scaler = _scaler()
    scaler.mean_, scaler.var_ = to_numpy(mean).astype(np.float64), to_numpy(var).astype(np.float64)
    # as StandardScaler: constant features keep their scale
    scaler.scale_ = np.where(scaler.var_ > 0, np.sqrt(scaler.var_), 1.0)
    scaler.n_features_in_, scaler.n_samples_seen_ = X.shape[1], X.shape[0]
    return scaler


def _constant_features(scaler):
    """The features the scaler found constant, as StandardScaler decides it.

    Their scale is kept at 1, and the mean of a constant column at 1e18 can be
    off by a rounding step, which a scale of 1 keeps: 2048 where 0 is meant.
    """
    eps = np.finfo(np.float64).eps
    n = np.max(scaler.n_samples_seen_)
    mean = 0.0 if scaler.mean_ is None else scaler.mean_
    return scaler.var_ <= n * eps * scaler.var_ + (n * mean * eps) ** 2


def silent_features(scaler, dtype):
    """The features whose standardised column is 0 on the host: constant
    ones, and those whose scale is under the normal numbers of ``dtype``
    (1e-38 in float32), which dividing by overflowed."""
    return _constant_features(scaler) | (scaler.scale_ < np.finfo(dtype).tiny)


def standardize(scaler, X):
    """Standardised copy of X in X's own floating type, missing values set to
    0 (no vote). The scaler's statistics stay float64, as StandardScaler's."""
    if is_cupy_array(X):
        return _standardize_on_device(scaler, X)
    with np.errstate(divide="ignore", invalid="ignore"):  # such columns are zeroed below
        Z = scaler.transform(X)  # float32 stays float32; other input becomes float64
    constant = silent_features(scaler, Z.dtype)
    if sp.issparse(Z):
        Z = sp.csr_matrix(Z @ sp.diags((~constant).astype(Z.dtype)), dtype=Z.dtype)
        Z.data[np.isnan(Z.data)] = 0.0
        return Z
    Z = np.asarray(Z)
    Z[np.isnan(Z)] = 0.0
    Z[:, constant] = 0.0  # a constant feature casts no vote
    return Z


def _standardize_on_device(scaler, X):
    """:func:`standardize` of CuPy X, on the device; a constant feature casts
    no vote."""
    xp = get_namespace(X)
    Z = X - xp.asarray(scaler.mean_, dtype=X.dtype)
    Z /= xp.asarray(scaler.scale_, dtype=X.dtype)  # in place: one copy of X, not two
    Z *= xp.asarray(~_constant_features(scaler), dtype=X.dtype)
    return xp.nan_to_num(Z, nan=0.0, copy=False)
