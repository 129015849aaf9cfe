"""A small estimator that computes on CuPy arrays: an expert that takes
device arrays, for the GPU tests and benchmarks."""

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin


class CupyRidge(RegressorMixin, BaseEstimator):
    """Ridge regression with row weights, minimising Ridge's objective
    ``sum_i w_i (y_i - x_i b - c)^2 + alpha ||b||^2``, on CuPy arrays with
    ``device="cuda"`` (an expert that takes device arrays) and on NumPy
    arrays with ``device="cpu"`` (its twin on the host, whose parameters
    are the same but for the device). It refuses arrays of the other kind."""

    def __init__(self, alpha=1.0, device="cuda"):
        self.alpha = alpha
        self.device = device

    def _namespace(self, *arrays):
        xp = np
        if self.device == "cuda":
            import cupy as xp
        if not all(isinstance(a, xp.ndarray) for a in arrays):
            raise TypeError(f"CupyRidge(device={self.device!r}) takes {xp.__name__} arrays only.")
        return xp

    def fit(self, X, y, sample_weight):
        xp = self._namespace(X, y, sample_weight)
        share = sample_weight / sample_weight.sum()
        x_mean, y_mean = share @ X, share @ y
        centred = X - x_mean
        gram = centred.T @ (centred * sample_weight[:, None])
        gram += self.alpha * xp.eye(X.shape[1])
        self.coef_ = xp.linalg.solve(gram, centred.T @ (sample_weight * (y - y_mean)))
        self.intercept_ = y_mean - x_mean @ self.coef_
        return self

    def predict(self, X):
        self._namespace(X)
        return X @ self.coef_ + self.intercept_
