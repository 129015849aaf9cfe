"""Synthetic data with regimes: the data mixtures of experts are built for."""

import numpy as np
from sklearn.utils import check_random_state


def make_regime_regression(
    n_samples=20000,
    n_features=8,
    n_regimes=4,
    *,
    center_scale=2.0,
    coef_scale=2.0,
    noise=0.5,
    random_state=None,
    return_regimes=False,
):
    """Piecewise-linear regression: each row follows the linear law of its regime.

    ``X ~ N(0, I)``; ``n_regimes`` centres ``~ N(0, center_scale^2 I)``; a row's
    regime is its nearest centre; ``y = x @ w_regime + N(0, noise^2)`` with
    ``w_regime ~ N(0, coef_scale^2 I)``. The regimes are Voronoi cells, which a
    softmax gate can represent exactly, so a mixture of linear experts can reach
    the noise ceiling while a single linear model or tree ensemble cannot.

    Parameters
    ----------
    n_samples : int, default=20000
    n_features : int, default=8
    n_regimes : int, default=4
    center_scale : float, default=2.0
        Standard deviation of the regime centres.
    coef_scale : float, default=2.0
        Standard deviation of each regime's coefficients.
    noise : float, default=0.5
        Standard deviation of the Gaussian noise on y.
    random_state : int, RandomState instance or None, default=None
    return_regimes : bool, default=False
        Also return each row's regime index.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
    regimes : ndarray of shape (n_samples,)
        Only when ``return_regimes`` is True.

    Examples
    --------
    >>> from skmoe.datasets import make_regime_regression
    >>> X, y = make_regime_regression(n_samples=100, random_state=0)
    >>> X.shape, y.shape
    ((100, 8), (100,))
    """
    rng = check_random_state(random_state)
    X = rng.standard_normal((n_samples, n_features))
    centers = center_scale * rng.standard_normal((n_regimes, n_features))
    coefs = coef_scale * rng.standard_normal((n_regimes, n_features))
    regimes = ((X[:, None, :] - centers) ** 2).sum(axis=2).argmin(axis=1)
    y = np.einsum("ij,ij->i", X, coefs[regimes]) + noise * rng.standard_normal(n_samples)
    return (X, y, regimes) if return_regimes else (X, y)


def make_regime_classification(
    n_samples=20000,
    n_features=8,
    n_regimes=4,
    *,
    n_classes=2,
    center_scale=2.0,
    coef_scale=2.0,
    random_state=None,
    return_regimes=False,
):
    """Classification by regimes: each row's class follows the logistic law of its regime.

    ``X ~ N(0, I)``; ``n_regimes`` centres ``~ N(0, center_scale^2 I)``; a row's
    regime is its nearest centre, as in :func:`make_regime_regression`. Each
    regime has its own multinomial logistic model, ``W_regime`` of shape
    ``(n_features, n_classes)`` with entries ``~ N(0, coef_scale^2)``, and a
    row's class is drawn from ``softmax(x @ W_regime)`` (as the argmax of the
    logits plus Gumbel noise). The class boundaries thus differ from one regime
    to the next: a mixture of logistic experts behind a softmax gate can
    represent the law exactly, a single logistic model cannot. For the same
    ``n_samples``, ``n_features``, ``n_regimes``, ``center_scale`` and
    ``random_state``, ``X`` and the regimes are those of
    :func:`make_regime_regression`.

    Parameters
    ----------
    n_samples : int, default=20000
    n_features : int, default=8
    n_regimes : int, default=4
    n_classes : int, default=2
    center_scale : float, default=2.0
        Standard deviation of the regime centres.
    coef_scale : float, default=2.0
        Standard deviation of each regime's logistic coefficients. Larger
        values give sharper class boundaries (less label noise).
    random_state : int, RandomState instance or None, default=None
    return_regimes : bool, default=False
        Also return each row's regime index.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
        Integer class labels in ``0 .. n_classes - 1``. A class may be missing
        when ``n_samples`` is very small.
    regimes : ndarray of shape (n_samples,)
        Only when ``return_regimes`` is True.

    See Also
    --------
    make_regime_regression : The regression counterpart.

    Examples
    --------
    >>> import numpy as np
    >>> from skmoe.datasets import make_regime_classification
    >>> X, y = make_regime_classification(n_samples=100, n_classes=3, random_state=0)
    >>> X.shape, y.shape
    ((100, 8), (100,))
    >>> np.unique(y).tolist()
    [0, 1, 2]
    """
    rng = check_random_state(random_state)
    # drawn in the order of make_regime_regression, so X and the regimes match its own
    X = rng.standard_normal((n_samples, n_features))
    centers = center_scale * rng.standard_normal((n_regimes, n_features))
    coefs = coef_scale * rng.standard_normal((n_regimes, n_features, n_classes))
    regimes = ((X[:, None, :] - centers) ** 2).sum(axis=2).argmin(axis=1)
    logits = np.einsum("ij,ijc->ic", X, coefs[regimes])
    # argmax of logits plus standard Gumbel noise is a draw from their softmax
    y = (logits + rng.gumbel(size=logits.shape)).argmax(axis=1)
    return (X, y, regimes) if return_regimes else (X, y)
