"""Array backends: NumPy always, CuPy when installed and asked for.

CuPy is an optional dependency (``pip install "skmoe[gpu]"``): nothing here
imports it until a CUDA device is asked for.
"""

import copy
import importlib.util

import numpy as np

GPU_INSTALL_HINT = 'install the GPU extra, pip install "skmoe[gpu]", on a machine with CUDA'


def cupy_available():
    """True when CuPy imports and sees at least one CUDA device."""
    if importlib.util.find_spec("cupy") is None:
        return False
    import cupy

    try:
        return cupy.cuda.runtime.getDeviceCount() > 0
    except cupy.cuda.runtime.CUDARuntimeError:
        return False


def require_cupy():
    """The cupy module, or an error that says how to get it."""
    if not cupy_available():
        raise ImportError(f"device='cuda' needs CuPy and a CUDA device: {GPU_INSTALL_HINT}.")
    import cupy

    return cupy


def is_cupy_array(a):
    """True for a CuPy array, without importing CuPy when it is not loaded."""
    return type(a).__module__.split(".")[0] == "cupy"


def to_numpy(a):
    """A NumPy copy of a CuPy array; anything else (NumPy arrays, sparse
    matrices, lists) as it is."""
    return a.get() if is_cupy_array(a) else a


def get_namespace(*arrays):
    """The array module of the arrays: cupy if any is a CuPy array, else numpy.

    CuPy mirrors the NumPy functions the fitting code uses, so one code path
    serves both; sparse matrices and other inputs count as NumPy.
    """
    if any(is_cupy_array(a) for a in arrays):
        import cupy

        return cupy
    return np


# Rows per slice where a pass over a CuPy array is cut up to bound the
# temporaries it needs: many, since every slice costs kernel launches
# (hashing 10M x 32 rows took 0.02 s in slices of this size, 0.12 s in
# slices of HOST_SLICE_ROWS).
DEVICE_SLICE_ROWS = 1 << 20

# Rows per slice of a pass over a NumPy array: few, so that a slice's
# temporaries (a few MB) stay in cache. Hashing 1M x 32 rows took 0.11 s in
# slices of this size, 1.7 s in slices of DEVICE_SLICE_ROWS; casting float32
# rows to float64 for the linear experts' normal equations, 0.14 s against
# 0.24 s in one pass (400,000 x 20 rows, 8 experts).
HOST_SLICE_ROWS = 1 << 14


def rows_per_slice(a):
    """The rows per slice of a pass over the array ``a``, for its device."""
    return DEVICE_SLICE_ROWS if is_cupy_array(a) else HOST_SLICE_ROWS


def all_finite(a):
    """Whether every entry of the array ``a`` (CuPy or NumPy) is finite.

    A sum is finite unless an entry is not or the sum overflows; only then are
    the entries checked, a slice of rows at a time (DEVICE_SLICE_ROWS on
    either device: this runs only on non-finite input). Neither way writes
    an array of ``a``'s size.
    """
    if bool(get_namespace(a).isfinite(a.sum())):
        return True
    return all(
        bool(get_namespace(a).isfinite(a[i : i + DEVICE_SLICE_ROWS]).all())
        for i in range(0, len(a), DEVICE_SLICE_ROWS)
    )


def check_device_finite(X):
    """Raise scikit-learn's error for CuPy ``X`` with a NaN or an infinity."""
    if not all_finite(X):
        raise ValueError("Input X contains NaN or infinity.")


def erf(x):
    """The error function on the device of ``x``."""
    if is_cupy_array(x):
        from cupyx.scipy.special import erf as cupy_erf

        return cupy_erf(x)
    from scipy.special import erf as scipy_erf

    return scipy_erf(x)


def expit(x):
    """The logistic sigmoid on the device of ``x``."""
    if is_cupy_array(x):
        from cupyx.scipy.special import expit as cupy_expit

        return cupy_expit(x)
    from scipy.special import expit as scipy_expit

    return scipy_expit(x)


def to_host(obj):
    """``obj`` with every CuPy array in it, or in skmoe objects and lists it
    holds, replaced by a NumPy copy; what holds none is returned as is."""
    if is_cupy_array(obj):
        return obj.get()
    if isinstance(obj, list | tuple):
        return type(obj)(to_host(item) for item in obj)
    if isinstance(obj, dict):
        return {key: to_host(value) for key, value in obj.items()}
    if type(obj).__module__.startswith("skmoe.") and hasattr(obj, "__dict__"):
        host = copy.copy(obj)
        host.__dict__ = to_host(obj.__dict__)
        return host
    return obj
