"""Warnings that point at the user's call, not at skmoe's own lines."""

import os
import sys
import warnings

import sklearn

# Frames in these folders are skipped: skmoe's own, and scikit-learn's, whose
# decorators (_fit_context) and meta-estimators (Pipeline, GridSearchCV) stand
# between a user's line and skmoe's fit.
_SKIPPED = tuple(os.path.dirname(path) + os.sep for path in (__file__, sklearn.__file__))


def warn(message, category=UserWarning):
    """``warnings.warn`` with the stack level of the first caller outside
    skmoe and scikit-learn (Python 3.12's ``skip_file_prefixes``, for 3.10
    too)."""
    frame, level = sys._getframe(1), 2  # stacklevel 2 is the caller of warn
    while frame is not None and frame.f_code.co_filename.startswith(_SKIPPED):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)
