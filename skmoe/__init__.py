"""skmoe: mixture-of-experts estimators for scikit-learn."""

from ._classifier import MixtureOfExpertsClassifier
from ._regressor import MixtureOfExpertsRegressor

__version__ = "0.1.0.dev0"

__all__ = ["MixtureOfExpertsClassifier", "MixtureOfExpertsRegressor", "__version__"]
