"""Array backends: NumPy always, CuPy when installed and asked for.

CuPy is an optional dependency (``pip install "skmoe[gpu]"``): nothing here
imports it until a CUDA device is asked for.
"""

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
    """A NumPy array from a NumPy or CuPy array."""
    return a.get() if is_cupy_array(a) else np.asarray(a)
