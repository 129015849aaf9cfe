"""The public classes' docstrings list exactly their parameters, in order."""

import inspect
import re

import pytest

from skmoe import MixtureOfExpertsClassifier, MixtureOfExpertsRegressor
from skmoe.gates import HierarchicalGate, SoftmaxGate
from skmoe.inspection import ExpertUsageDisplay, GateDisplay


def _documented_parameters(cls):
    """The names of the numpydoc ``Parameters`` section of ``cls``'s docstring:
    its unindented lines, ``name : type`` or ``name1, name2 : type``."""
    doc = inspect.cleandoc(cls.__doc__)
    section = re.search(r"^Parameters\n-+\n(.*?)(?=^\S[^\n]*\n-+\n|\Z)", doc, re.M | re.S)
    assert section, f"{cls.__name__} has no Parameters section"
    heads = re.findall(r"^(\S[^:\n]*)", section.group(1), re.M)
    return [name.strip() for head in heads for name in head.split(",")]


@pytest.mark.parametrize(
    "cls",
    [
        MixtureOfExpertsRegressor,
        MixtureOfExpertsClassifier,
        SoftmaxGate,
        HierarchicalGate,
        GateDisplay,
        ExpertUsageDisplay,
    ],
)
def test_docstring_lists_the_parameters(cls):
    parameters = list(inspect.signature(cls.__init__).parameters)[1:]
    assert _documented_parameters(cls) == parameters
