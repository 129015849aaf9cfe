"""The linear experts' normal equations on the GPU, by the pair-Gram kernel
(see :mod:`._linear`); None for host input, whose equations
:mod:`skmoe.experts._linear` forms with NumPy."""

import numpy as np

from . import is_cupy_array, to_numpy


def device_normal_equations(X, y, weights):
    """For CuPy X, the offset and every expert's weighted Gram matrix and
    right-hand side of ``x1 = [x - offset, 1]``, float64 host arrays: the
    products on the GPU, the K small systems left to the host. None for
    other input.

    The offset only needs to be near the data's middle, not its exact mean:
    the mean of about 4096 rows spares a pass over X per fit.
    """
    if not is_cupy_array(X):
        return None
    from ._linear import weighted_normal_equations

    offset = X[:: max(1, X.shape[0] // 4096)].mean(axis=0)
    gram, rhs = weighted_normal_equations(X, y, weights, offset)
    return to_numpy(offset).astype(np.float64), gram, rhs
