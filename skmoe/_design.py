"""The standardised rows of one fit, ``[Z, 1]``, shared by the M-steps of the
gate and of the built-in linear and logistic experts.

Every M-step needs K weighted Gram matrices ``Z1' diag(w_k) Z1``: the gate's
Newton preconditioner and the experts' normal equations or Böhning bounds.
Formed one expert at a time they are K products over the rows, each of a
freshly weighted copy of ``Z1``. For a fit's many M-steps on dense float64
NumPy rows, the upper triangles of the rows' outer products are formed once,
and the K Gram matrices of any weights are then one matrix product: 2-3x
faster than the K products at d = 8-32 and K >= d / 5, forming them costing
about two M-steps' products. The product reads all of them, p (p + 1) / 2
values a row for p = d + 1, where the K products compute K p^2 terms a row:
with fewer experts than about p / 5 the K products are the faster (d = 40,
K = 4: 11 against 14 ms). They are held for the whole fit, so they are
formed only within a quarter of scikit-learn's ``working_memory``; float32
rows, whose fits are sized for memory, never form them.

On dense float64 host rows the built-in experts' M-steps solve in the
gate's standardised coordinates, from these Gram matrices and the design's
``[Z, 1]`` (with the products or without), and map their coefficients back
to X's: a ridge penalty ``alpha ||coef||^2`` on X's coefficients is
``alpha / scale_j^2`` on Z's, the same problem. (Centred on their own, they
would copy X at every M-step: 8% of a fit of 22k x 53 rows.)
"""

from functools import cached_property

import numpy as np
import scipy.sparse as sp
from sklearn import get_config

from ._backend import get_namespace
from ._backend._products import transposed_product, weighted_grams
from ._backend._scaling import silent_features

# Above twice this many rows, the gate's Newton steps take their curvature
# (the conjugate gradients' Hessian products and the preconditioner's blocks)
# from every step-th row, about this many: a subsampled Hessian (Byrd, Chin,
# Neveitt and Nocedal 2011, "On the use of stochastic Hessian information in
# optimization methods for machine learning"). The gradient and the line
# search still see every row, so each accepted step lowers the full
# objective; a million rows estimate a Hessian of a few hundred coefficients
# closely enough that the steps barely change.
CURVATURE_ROWS = 1 << 20

# The preconditioner's blocks (K Gram matrices of (d + 1)^2) need the
# curvature less closely than the conjugate gradients' products: they only
# steer them. Above twice this many rows of the curvature, they are formed
# from every step-th of those.
BLOCK_ROWS = 1 << 18


class Design:
    """``Z1 = [Z, 1]`` for the standardised rows ``Z`` of a fit, and its
    weighted Gram matrices.

    Parameters
    ----------
    Z : {ndarray, sparse matrix, cupy.ndarray} of shape (n_samples, n_features)
        The rows standardised by ``scaler``.
    scaler : StandardScaler, default=None
        The standardisation; needed only to map coefficients to and from X's
        coordinates.
    n_experts : int, default=None
        The number of weight columns the Gram matrices will be asked for:
        given, the rows' outer products are formed where they pay (see
        above), for a fit's many M-steps. A single M-step gains nothing from
        them.
    """

    def __init__(self, Z, scaler=None, *, n_experts=None):
        self.Z = Z
        self.scaler = scaler
        self._Z1 = None
        self._outer = None
        if n_experts is not None and _outer_products_pay(Z, n_experts):
            self._outer = _upper_outer_products(self.Z1)

    @property
    def Z1(self):
        """``[Z, 1]`` in Z's floating type (sparse for sparse Z), made once."""
        if self._Z1 is None:
            xp = get_namespace(self.Z)
            ones = xp.ones((self.Z.shape[0], 1), dtype=self.Z.dtype)
            if sp.issparse(self.Z):
                self._Z1 = sp.hstack([self.Z, ones], format="csr")
            else:
                self._Z1 = xp.hstack([self.Z, ones])
        return self._Z1

    @cached_property
    def curvature(self):
        """``(design, rows)``: the Design of the rows on which Newton steps
        estimate curvature, and their index into Z's rows (every row up to
        twice ``CURVATURE_ROWS``; else every step-th, a strided sample that
        covers data sorted in any order)."""
        return self._strided_sample(CURVATURE_ROWS)

    @cached_property
    def block_rows(self):
        """``(design, rows)`` as :attr:`curvature`, of the rows from which the
        preconditioner's blocks are formed (about ``BLOCK_ROWS``)."""
        return self._strided_sample(BLOCK_ROWS)

    def _strided_sample(self, size):
        step = self.Z.shape[0] // size
        if step < 2:
            return self, slice(None)
        rows = slice(None, None, step)
        Z = self.Z[rows]
        if not sp.issparse(Z):
            Z = get_namespace(Z).ascontiguousarray(Z)
        return Design(Z, self.scaler), rows

    @property
    def has_outer_products(self):
        """Whether the rows' outer products are formed (see above)."""
        return self._outer is not None

    @property
    def solves_experts(self):
        """Whether the built-in experts' M-steps solve in Z's coordinates,
        from :meth:`grams` and :attr:`Z1`: where the outer products are
        formed, and on any dense float64 host rows, whose ``[Z, 1]`` the
        design holds for the whole fit (the experts would otherwise form a
        centred copy of X at every M-step). Float32 rows are left to the
        experts, whose Gram matrices sum them in float64."""
        dense64 = isinstance(self.Z, np.ndarray) and self.Z.dtype == np.float64
        return self.scaler is not None and (self.has_outer_products or dense64)

    def grams(self, weights):
        """``Z1' diag(weights[:, k]) Z1`` for every column of ``weights``
        (n_samples, K), as a float64 host array of shape (K, d + 1, d + 1)."""
        if self._outer is None:
            return weighted_grams(self.Z, weights)
        p = self.Z1.shape[1]
        upper = np.asarray(weights, dtype=np.float64).T @ self._outer.T
        grams = np.empty((weights.shape[1], p, p))
        rows, cols = np.triu_indices(p)
        grams[:, rows, cols] = upper
        grams[:, cols, rows] = upper
        return grams

    def moments(self, B):
        """``Z1' B`` for ``B`` of shape (n_samples, q), summed in float64 for
        float32 rows (see :func:`~skmoe._backend._products.transposed_product`)."""
        return np.asarray(transposed_product(self.Z1, B), dtype=np.float64)

    @cached_property
    def _silent(self):
        """The features whose column of Z is 0 (see
        :func:`~skmoe._backend._scaling.silent_features`)."""
        return silent_features(self.scaler, self.Z.dtype)

    def ridge_penalty(self, alpha):
        """The per-coordinate penalty in Z's coordinates, shape (d + 1,),
        equal to ``alpha ||coef||^2`` on X's coefficients: ``alpha /
        scale_j^2``, 0 for the intercept. A feature that casts no vote (its
        column of Z is 0) gets 1: its coefficient is 0 whatever ``alpha``, and
        the system stays definite."""
        silent = self._silent
        penalty = np.where(silent, 1.0, alpha / self.scaler.scale_**2)
        return np.append(penalty, 0.0)

    def to_original(self, theta):
        """Coefficients and intercepts on X from parameters on ``Z1``:
        ``theta`` of shape (..., d + 1), float64."""
        silent = self._silent
        coef = np.where(silent, 0.0, theta[..., :-1] / self.scaler.scale_)
        return coef, theta[..., -1] - coef @ np.where(silent, 0.0, self.scaler.mean_)

    def from_original(self, coef, intercept):
        """Parameters on ``Z1`` from coefficients and intercepts on X (the
        inverse of :meth:`to_original` on the features that vote)."""
        silent = self._silent
        coef = np.where(silent, 0.0, np.asarray(coef, dtype=np.float64))
        shift = coef @ np.where(silent, 0.0, self.scaler.mean_)
        intercept = np.asarray(intercept, dtype=np.float64) + shift
        return np.concatenate([coef * self.scaler.scale_, intercept[..., None]], axis=-1)


def _outer_products_pay(Z, n_experts):
    """Whether forming the rows' outer products pays (see the module's
    docstring)."""
    if not (isinstance(Z, np.ndarray) and Z.dtype == np.float64):
        return False
    p = Z.shape[1] + 1
    n_bytes = 8 * Z.shape[0] * p * (p + 1) // 2
    return 5 * n_experts >= p and 4 * n_bytes <= get_config()["working_memory"] * 2**20


def _upper_outer_products(Z1):
    """Each row's outer product with itself, upper triangle in row-major
    order, one row of the result per entry: shape (p (p + 1) / 2,
    n_samples), so that each column of ``Z1`` fills a contiguous block
    (three times as fast to form as one row per row of ``Z1``)."""
    columns = np.ascontiguousarray(Z1.T, dtype=np.float64)
    p, n = columns.shape
    out = np.empty((p * (p + 1) // 2, n))
    start = 0
    for i in range(p):
        np.multiply(columns[i], columns[i:], out=out[start : start + p - i])
        start += p - i
    return out
