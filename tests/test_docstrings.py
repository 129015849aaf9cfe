"""The public classes' and functions' docstrings list exactly their parameters, in order."""

import inspect
import re

import pytest

from skmoe import MixtureOfExpertsClassifier, MixtureOfExpertsRegressor
from skmoe.gates import HierarchicalGate, SoftmaxGate
from skmoe.inspection import (
    ExpertReport,
    ExpertSummary,
    ExpertUsageDisplay,
    GateDisplay,
    GateRules,
    expert_report,
    gate_rules,
)


def _documented_parameters(obj):
    """The names of the numpydoc ``Parameters`` section of ``obj``'s docstring:
    its unindented lines, ``name : type`` or ``name1, name2 : type``."""
    doc = inspect.cleandoc(obj.__doc__)
    section = re.search(r"^Parameters\n-+\n(.*?)(?=^\S[^\n]*\n-+\n|\Z)", doc, re.M | re.S)
    assert section, f"{obj.__name__} has no Parameters section"
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
        ExpertReport,
        ExpertSummary,
        GateRules,
    ],
)
def test_docstring_lists_the_parameters(cls):
    parameters = list(inspect.signature(cls.__init__).parameters)[1:]
    assert _documented_parameters(cls) == parameters


@pytest.mark.parametrize("func", [expert_report, gate_rules])
def test_function_docstring_lists_the_parameters(func):
    assert _documented_parameters(func) == list(inspect.signature(func).parameters)
