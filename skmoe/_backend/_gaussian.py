"""The Gaussian likelihood's passes over (n, K) arrays, on either device:
one fused CUDA kernel each on the GPU (see :mod:`._kernels`), the NumPy
expression on the CPU."""

import numpy as np

from . import is_cupy_array

_FLOAT32_MAX = np.finfo(np.float32).max


def gaussian_log_lik(means, y, variance):
    """``-0.5 * (log(2 pi v_k) + (y_i - m_ik)^2 / v_k)`` for every row and
    expert, in ``means``' floating type; in float32 the squared term is
    capped at float32's largest value (past it a row would be impossible
    under every expert, and its responsibilities NaN)."""
    if is_cupy_array(means):
        from ._kernels import gaussian_log_lik as fused

        return fused(means, y, variance)
    variance = variance.astype(means.dtype, copy=False)  # the rows' type
    squared = (y[:, None] - means) ** 2 / variance
    if squared.dtype == np.float32:
        squared = np.minimum(squared, _FLOAT32_MAX, out=squared)
    return -0.5 * (np.log(2 * np.pi * variance) + squared)


def weighted_squared_residuals(weights, means, y):
    """``weights * (y[:, None] - means) ** 2``."""
    if is_cupy_array(means):
        from ._kernels import weighted_squared_residuals as fused

        return fused(weights, means, y)
    return weights * (y[:, None] - means) ** 2
