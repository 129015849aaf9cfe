"""Row-wise work in chunks of rows, so that memory beyond the input stays bounded.

The chunk size follows scikit-learn's ``working_memory`` setting (see
:func:`sklearn.get_config`), as its pairwise-distance code does: the caller
gives an estimate of the bytes one row needs, and each chunk's temporaries
stay under the budget whatever the number of rows.
"""

from sklearn import get_config
from sklearn.utils import gen_batches

from ._backend import get_namespace


def _chunk_rows(row_bytes, n_rows):
    """Rows per chunk under ``working_memory`` (MiB), at least one. (As
    scikit-learn's own ``get_chunk_n_rows``, which is not public.)"""
    budget = get_config()["working_memory"] * 2**20
    return int(min(n_rows, max(1, budget // row_bytes)))


def in_row_chunks(function, row_bytes, *arrays):
    """``function(*arrays)``, computed on chunks of rows and concatenated.

    Parameters
    ----------
    function : callable
        Maps row slices of ``arrays`` to an array, or a tuple of arrays, with
        one row per input row.
    row_bytes : int
        Estimated memory one row needs inside ``function``.
    *arrays : arrays or sparse matrices with the same number of rows

    Returns
    -------
    What ``function`` returns, for all rows.
    """
    n_rows = arrays[0].shape[0]
    chunk = _chunk_rows(row_bytes, n_rows)
    if chunk >= n_rows:
        return function(*arrays)
    parts = [function(*(a[rows] for a in arrays)) for rows in gen_batches(n_rows, chunk)]
    if not isinstance(parts[0], tuple):
        return get_namespace(parts[0]).concatenate(parts)
    return tuple(get_namespace(p[0]).concatenate(p) for p in zip(*parts, strict=True))
