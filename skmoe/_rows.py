"""Distinct rows: a fit sees each distinct row once, with its copies' summed weight.

A row of integer weight w and w copies of it then give the same fit, bit for
bit, in any order of the rows: everything EM and the gradient solver compute
(sums, k-means seeding, random draws) sees the same arrays.

Rows are told apart by a 64-bit hash of their bits, computed with integer
arithmetic (exact, the same on every CPU, BLAS and GPU). Rows whose hashes
agree are compared bit for bit; should two distinct rows ever share a hash
(about 2**-64 for a pair), the rows are kept as they are given, so no row is
ever merged into another that differs from it.

The rows kept are put in the order of a fixed projection, each feature scaled
to [0, 1] by its range (ties by hash): a feature's range is the same however
the rows are spelled, and the order survives a change of units or of
precision (float32 or float64 X). Rows all distinct and of unit weight have
no other spelling than their order: they stay as given, with no copy (the
rows of zero weight left out).
"""

from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from ._backend import get_namespace, rows_per_slice, to_numpy


class DistinctRows(NamedTuple):
    """One copy of each distinct row of positive weight, as indices.

    rows : indices into the given rows of the copies kept, in their order.
    weight : the summed weight of each kept row's copies.
    positive : indices of the rows of positive weight.
    group : for each row of ``positive``, the position in ``rows`` of its copy.
    """

    rows: object
    weight: object
    positive: object
    group: object


def distinct_rows(X, y, sample_weight):
    """The distinct rows of positive weight of ``(X, y)``, ``X`` dense or
    sparse, ``y`` None or one label or value per row, on the device of ``X``.
    """
    xp = get_namespace(X)
    codes = None if y is None else _codes(y)
    positive = xp.flatnonzero(sample_weight > 0)
    hashes = row_hashes(X, codes)[positive]
    _, first, group, counts = xp.unique(
        hashes, return_index=True, return_inverse=True, return_counts=True
    )
    group = group.ravel()
    copies = xp.flatnonzero(counts[group] > 1)
    if copies.size and not _same_rows(X, codes, positive[copies], positive[first[group[copies]]]):
        return _as_given(positive, sample_weight)  # two distinct rows share a hash
    if first.size == positive.size and bool(xp.all(sample_weight[positive] == 1)):
        # nothing merged, nothing weighted: no other spelling of these rows
        # but their order, which is left as given
        return _as_given(positive, sample_weight)
    weight = xp.bincount(group, weights=sample_weight[positive], minlength=first.size)
    rows = positive[first]
    order = xp.argsort(_order_key(X, rows), kind="stable")  # ties stay in hash order
    rank = xp.empty_like(order)
    rank[order] = xp.arange(order.size)
    weight = weight[order].astype(sample_weight.dtype)
    return DistinctRows(rows[order], weight, positive, rank[group])


def distinct_fit_rows(X, y, sample_weight, init_resp):
    """The rows a fit sees: each distinct ``(x, y)`` of positive weight once,
    with its copies' summed weight, and the initial responsibilities given,
    each row's the weighted mean of its copies'."""
    distinct = distinct_rows(X, y, sample_weight)
    if init_resp is not None:
        weight = to_numpy(sample_weight[distinct.positive])[:, None]
        summed = np.zeros((len(distinct.rows), init_resp.shape[1]))
        np.add.at(summed, to_numpy(distinct.group), init_resp[to_numpy(distinct.positive)] * weight)
        init_resp = summed / summed.sum(axis=1, keepdims=True)
    rows = distinct.rows
    if rows.size < X.shape[0] or not bool((rows[1:] > rows[:-1]).all()):  # a subset or reordered
        X, y = X[rows], y[rows]
    return X, y, distinct.weight, init_resp


def _as_given(positive, sample_weight):
    xp = get_namespace(positive)
    return DistinctRows(positive, sample_weight[positive], positive, xp.arange(positive.size))


def row_hashes(X, codes=None):
    """A 64-bit hash of each row of ``X`` (and its entry of ``codes``, the
    numbers that :func:`_codes` gives the labels or values of ``y``).

    Each entry contributes ``mix(bits ^ salt_j) - mix(salt_j)``, summed over the
    row modulo 2**64: a zero contributes nothing, so a sparse row and its dense
    copy hash alike, and the mix (the finaliser of splitmix64, a bijection
    whose output bits each depend on every input bit) keeps rows that differ
    only in a few high bits (small integers, powers of two) apart.
    """
    xp = get_namespace(X)
    n_columns = X.shape[1]
    salt = xp.asarray(np.random.default_rng(0).integers(0, 2**64, n_columns + 1, np.uint64))
    zero = _mix(salt)
    if sp.issparse(X):
        X = X.tocsr()
        terms = _mix(_bits(X.data) ^ salt[X.indices]) - zero[X.indices]
        sums = np.concatenate([np.zeros(1, np.uint64), np.cumsum(terms, dtype=np.uint64)])
        hashes = sums[X.indptr[1:]] - sums[X.indptr[:-1]]
    else:
        hashes = xp.empty(X.shape[0], dtype=np.uint64)
        step = rows_per_slice(X)  # the hash's temporaries a slice at a time
        for start in range(0, X.shape[0], step):
            rows = slice(start, start + step)
            terms = _mix(_bits(X[rows]) ^ salt[:n_columns]) - zero[:n_columns]
            hashes[rows] = terms.sum(axis=1, dtype=np.uint64)
    if codes is not None:
        hashes += _mix(_bits(codes) ^ salt[-1]) - zero[-1]
    return hashes


def _order_key(X, rows):
    """A projection of the rows ``rows`` of ``X`` onto a fixed direction, in
    float64, each feature scaled to [0, 1] by its range over those rows; each
    row's terms are added in column order, so a row's key does not depend on
    the rows around it."""
    xp = get_namespace(X)
    direction = np.random.default_rng(0).normal(size=X.shape[1])
    if sp.issparse(X):
        X = X[rows].tocsr()
        X.sort_indices()
        low = X.min(axis=0).toarray().ravel()
        span = X.max(axis=0).toarray().ravel() - low
        scale = direction / np.where(span > 0, span, 1.0)
        # an absent entry is a zero, whose term is -low * scale
        key = np.full(X.shape[0], -(low * scale).sum())
        terms = X.data.astype(np.float64) * scale[X.indices]
        filled = np.flatnonzero(np.diff(X.indptr))
        if filled.size:
            key[filled] += np.add.reduceat(terms, X.indptr[filled])
        return key
    key = xp.zeros(rows.size)
    for j in range(X.shape[1]):
        column = X[rows, j].astype(np.float64)
        low = column.min()
        span = column.max() - low
        key += (column - low) * float(direction[j] / span if span > 0 else direction[j])
    return key


def _same_rows(X, codes, a, b):
    """Whether rows ``a`` and rows ``b`` are bit for bit the same."""
    xp = get_namespace(X)
    if codes is not None and not bool(xp.all(_bits(codes[a]) == _bits(codes[b]))):
        return False
    if sp.issparse(X):
        X = X.tocsr()
        left, right = X[a], X[b]
        left.sort_indices()
        right.sort_indices()
        left.eliminate_zeros()
        right.eliminate_zeros()
        return (
            np.array_equal(left.indptr, right.indptr)
            and np.array_equal(left.indices, right.indices)
            and np.array_equal(_bits(left.data), _bits(right.data))
        )
    return bool(xp.all(_bits(X[a]) == _bits(X[b])))


def _codes(y):
    """``y`` as numbers: floats as they are, other labels as their rank."""
    xp = get_namespace(y)
    if y.dtype.kind == "f":
        return y
    return xp.unique(y, return_inverse=True)[1].ravel()


def _bits(values):
    """The bits of each entry as a uint64 (floats) or the value (integers)."""
    if values.dtype.kind == "f":
        unsigned = values.view(np.uint32 if values.itemsize == 4 else np.uint64)
        return unsigned.astype(np.uint64, copy=False)
    return values.astype(np.uint64)


def _mix(z):
    z = z ^ (z >> np.uint64(30))
    z = z * np.uint64(0xBF58476D1CE4E5B9)
    z = z ^ (z >> np.uint64(27))
    z = z * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))
