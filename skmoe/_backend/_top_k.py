"""A top-k gate's choice of experts, on either device."""

import numpy as np

from . import get_namespace, is_cupy_array


def keep_top_k(logits, k):
    """Logits with all but the ``k`` largest of each row set to -inf.

    Exactly ``k`` survive per row, ties broken by position. On the GPU the
    choice is the fused kernel's.
    """
    if is_cupy_array(logits):
        from ._kernels import gate_top_k

        xp = get_namespace(logits)
        index = gate_top_k(logits, k)[1]
        rows = xp.arange(len(logits))[:, None]
        kept = xp.full_like(logits, -xp.inf)
        kept[rows, index] = logits[rows, index]
        return kept
    dropped = np.argpartition(-logits, k, axis=1)[:, k:]
    logits = logits.copy()
    np.put_along_axis(logits, dropped, -np.inf, axis=1)
    return logits
