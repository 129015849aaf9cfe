"""The input standardisation shared by the gate and the network experts."""

import numpy as np
import scipy.sparse as sp
from sklearn.preprocessing import StandardScaler


def fit_scaler(X, sample_weight):
    """A StandardScaler fitted with row weights; it centres dense input only."""
    return StandardScaler(with_mean=not sp.issparse(X)).fit(X, sample_weight=sample_weight)


def standardize(scaler, X):
    """Standardised float64 copy of X, missing values set to 0 (no vote)."""
    Z = scaler.transform(X)
    if sp.issparse(Z):
        Z = sp.csr_matrix(Z, dtype=np.float64)
        Z.data[np.isnan(Z.data)] = 0.0
        return Z
    Z = np.asarray(Z, dtype=np.float64)
    Z[np.isnan(Z)] = 0.0
    return Z
