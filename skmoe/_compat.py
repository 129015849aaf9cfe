"""Every private scikit-learn name skmoe uses, in one place.

scikit-learn's own estimators and those of scikit-learn-contrib use these;
they carry no promise of stability, so a release that moves one breaks
skmoe here and nowhere else. Public names are imported where they are used.
"""

from sklearn.base import _fit_context
from sklearn.neural_network._stochastic_optimizers import AdamOptimizer
from sklearn.utils import _safe_indexing
from sklearn.utils._metadata_requests import _routing_enabled
from sklearn.utils._optional_dependencies import check_matplotlib_support
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions, validate_params
from sklearn.utils.validation import (
    _check_feature_names,
    _check_n_features,
    _check_sample_weight,
)

__all__ = [
    "AdamOptimizer",
    "HasMethods",
    "Interval",
    "StrOptions",
    "_check_feature_names",
    "_check_n_features",
    "_check_sample_weight",
    "_fit_context",
    "_routing_enabled",
    "_safe_indexing",
    "check_matplotlib_support",
    "validate_params",
]
