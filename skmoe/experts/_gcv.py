"""Each ridge expert's penalty chosen by generalized cross-validation.

``expert_alpha="auto"``: at every M-step, each expert takes the penalty
that minimises the GCV criterion of its weighted ridge problem (Golub,
Heath and Wahba, 1979, "Generalized cross-validation as a method for
choosing a good ridge parameter"),

    GCV(alpha) = m RSS(alpha) / (m - df(alpha))^2,

where ``m`` is the expert's total weight (the rows it is responsible for,
each counted by its weight, so that a row of weight 2 counts as two copies),
``RSS`` its weighted residual sum of squares and ``df`` the trace of its hat
matrix, the intercept's 1 included; only penalties that leave
``m - df >= 1`` are tried. The weighted Gram matrix is all it
needs: one eigendecomposition of its centred feature block per expert gives
RSS and df in closed form for every penalty of a grid, O(d) each, as
scikit-learn's ``RidgeCV`` reuses one decomposition for all its alphas.
(``RidgeCV`` scores the exact leave-one-out errors, which need each row's
leverage, an (n, d) product per expert and penalty; GCV replaces the
leverages by their mean.) ``RidgeCV`` itself is not used: it refits from
the rows, and an M-step has the Gram matrices already.
"""

import numpy as np

from .._optim import RELATIVE_ALPHA_RANGE

# The penalties tried, relative to the mean eigenvalue of an expert's
# centred Gram matrix (its features' weighted variance times its weight),
# so that the grid follows the scale of the features and of the weights.
RELATIVE_ALPHAS = np.logspace(*np.log10(RELATIVE_ALPHA_RANGE), 41)


def gcv_ridge_solutions(gram, rhs, yy, penalty):
    """Every expert's ridge solution at its GCV penalty.

    ``gram`` (K, p, p) and ``rhs`` (K, p) are the normal equations of
    ``[x, 1]`` (the intercept last, never penalised), ``yy`` (K,) the
    weighted sums of ``y**2``, ``penalty`` (p,) the penalty per coordinate
    of ``alpha = 1`` (0 for the intercept). Returns ``theta`` (K, p), the
    solutions of ``(gram[k] + alpha[k] diag(penalty)) theta[k] = rhs[k]``,
    and ``alpha`` (K,); an expert with no weight gets zeros and a penalty of
    1 (what ``Ridge`` has by default).
    """
    theta, alpha = np.zeros(rhs.shape), np.ones(len(gram))
    mass = gram[:, -1, -1]
    active = mass > 0
    if not active.any():
        return theta, alpha
    gram, rhs, yy, m = gram[active], rhs[active], yy[active], mass[active]
    # the intercept eliminated: the features' and y's weighted centred moments
    s, sy = gram[:, :-1, -1], rhs[:, -1]
    centred = gram[:, :-1, :-1] - s[:, :, None] * s[:, None, :] / m[:, None, None]
    b = rhs[:, :-1] - s * (sy / m)[:, None]
    residual_yy = yy - sy**2 / m
    # in coordinates where the penalty is alpha ||.||^2
    r = 1 / np.sqrt(penalty[:-1])
    eigenvalues, vectors = np.linalg.eigh(centred * r[:, None] * r)
    eigenvalues = np.maximum(eigenvalues, 0.0)  # rounding below a zero eigenvalue
    c = np.einsum("kji,kj->ki", vectors, b * r)
    # the grid's scale: the mean eigenvalue, floored at rounding's reach of
    # the uncentred Gram; an expert whose features are constant on its rows
    # has none, and any penalty gives it the same solution
    uncentred = np.einsum("kii,i->k", gram[:, :-1, :-1], r**2) / len(r)
    scale = np.maximum(eigenvalues.mean(axis=1), np.finfo(float).eps * uncentred)
    scale = np.where(scale > 0, scale, 1.0)
    grid = scale[:, None] * RELATIVE_ALPHAS  # (K, G)
    L, a = eigenvalues[:, None, :], grid[:, :, None]  # (K, G, d) together
    shrink = 1 / (L + a)
    # RSS(alpha) = yy - 2 b'beta + beta' G beta, beta = V diag(shrink) c
    rss = np.maximum(residual_yy[:, None] - ((L + 2 * a) * shrink**2 * c[:, None] ** 2).sum(2), 0)
    df = 1 + (L * shrink).sum(axis=2)
    # the penalties that leave at least one unit of weight to the residuals:
    # nearer interpolation (an expert of fewer rows than parameters), RSS and
    # (m - df)^2 both tend to 0 and their ratio is rounding's; an expert with
    # no such penalty (a weight under 2) takes the largest
    free = m[:, None] - df
    valid = free >= 1
    criterion = np.where(valid, m[:, None] * rss / np.where(valid, free, 1) ** 2, np.inf)
    best = np.where(np.isfinite(criterion).any(axis=1), criterion.argmin(axis=1), -1)
    rows = np.arange(len(best))
    beta = r * np.einsum("kij,kj->ki", vectors, c * shrink[rows, best])
    theta[active, :-1] = beta
    theta[active, -1] = (sy - np.einsum("ki,ki->k", s, beta)) / m
    alpha[active] = grid[rows, best]
    return theta, alpha
