"""Regime classes for the classifier's GPU benchmark, drawn on the host by
NumPy, so that the GPU's fit (``gpu_classifier.py``) and the CPU's fit of a
subsample (``classifier_subsample.py``) see the same rows on any machine.

Rows ``X ~ N(0, I)`` in ``N_REGIMES`` regions of space (the nearest of random
centres), each with its own multinomial logistic law over the classes; a
row's class is the argmax of its law's logits plus Gumbel noise, as
``skmoe.datasets.make_regime_classification`` draws it. The laws'
coefficients have standard deviation ``4 / sqrt(d)``, so each row's logits
have about 4: labels neither certain nor random. ``make_regime_classification``
itself forms an (n, d, classes) array, too large at ten million rows.
"""

import numpy as np

N_REGIMES = 8
D = 32
FIT_ROWS = 10_000_000
TEST_ROWS = 1_000_000
_CHUNK_ROWS = 1_000_000


def regime_classes(n, d, n_classes, seed):
    """``(X, y, bayes)``: ``n`` float32 rows, their int32 classes and the
    Bayes classifier's labels (the argmax of the true law's logits)."""
    rng = np.random.default_rng(seed)
    centres = 2.0 * rng.standard_normal((N_REGIMES, d), dtype=np.float32)
    laws = (4.0 / d**0.5) * rng.standard_normal((d, N_REGIMES * n_classes), dtype=np.float32)
    X = rng.standard_normal((n, d), dtype=np.float32)
    y, bayes = np.empty(n, dtype=np.int32), np.empty(n, dtype=np.int32)
    for start in range(0, n, _CHUNK_ROWS):
        part = X[start : start + _CHUNK_ROWS]
        regime = ((centres**2).sum(axis=1) - 2 * part @ centres.T).argmin(axis=1)
        logits = (part @ laws).reshape(len(part), N_REGIMES, n_classes)
        logits = logits[np.arange(len(part)), regime]
        gumbel = -np.log(-np.log(rng.uniform(1e-12, 1.0, logits.shape)))
        rows = slice(start, start + len(part))
        y[rows], bayes[rows] = (logits + gumbel).argmax(axis=1), logits.argmax(axis=1)
    return X, y, bayes


def split(n_classes, seed, n=FIT_ROWS, d=D):
    """``(X, y, X_test, y_test, bayes_accuracy)``: ``n`` rows to fit,
    ``TEST_ROWS`` further ones to score on and the Bayes classifier's
    accuracy on them."""
    X, y, bayes = regime_classes(n + TEST_ROWS, d, n_classes, seed)
    ceiling = float((bayes[n:] == y[n:]).mean())
    return X[:n], y[:n], X[n:], y[n:], ceiling


def fingerprint(X, y):
    """A short digest of the rows, by which two machines' reports are
    checked to have seen the same data."""
    return f"{float(X[:1000].astype(np.float64).sum()):.6f}/{int(y.sum())}"
