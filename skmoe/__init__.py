"""skmoe: mixture-of-experts estimators for scikit-learn."""

from ._classifier import MixtureOfExpertsClassifier
from ._regressor import MixtureOfExpertsRegressor
from ._version import __version__

__all__ = ["MixtureOfExpertsClassifier", "MixtureOfExpertsRegressor", "__version__"]
