"""Inspection of fitted mixtures of experts.

Pictures: where the gate sends rows (:class:`GateDisplay`) and how much each
expert is used (:class:`ExpertUsageDisplay`); plotting needs matplotlib,
importing does not. Words, for data with more features than a picture
shows: each expert's share, error and largest coefficients
(:func:`expert_report`) and readable rules for the gate (:func:`gate_rules`).
"""

from ._gate import GateDisplay
from ._report import ExpertReport, ExpertSummary, expert_report
from ._rules import GateRules, gate_rules
from ._usage import ExpertUsageDisplay

__all__ = [
    "ExpertReport",
    "ExpertSummary",
    "ExpertUsageDisplay",
    "GateDisplay",
    "GateRules",
    "expert_report",
    "gate_rules",
]
