"""Warnings and errors that skmoe raises for users to catch or filter."""

from .experts._estimators import ExpertFitError

__all__ = ["ExpertFitError", "InconsistentVersionWarning"]


class InconsistentVersionWarning(UserWarning):
    """A model pickled by one version of skmoe is loaded by another.

    As scikit-learn's warning of the same name: the model may still work, or
    predict differently, or fail; refit it, or load it with the version that
    saved it.
    """

    def __init__(self, *, estimator_name, current_version, original_version):
        self.estimator_name = estimator_name
        self.current_version = current_version
        self.original_version = original_version
        super().__init__(
            f"Loading {estimator_name} saved by skmoe {original_version} with skmoe "
            f"{current_version}: it may predict differently or fail. Refit it, or load "
            f"it with skmoe {original_version}."
        )
