"""Visual inspection of fitted mixtures of experts: where the gate sends rows
(:class:`GateDisplay`) and how much each expert is used
(:class:`ExpertUsageDisplay`). Plotting needs matplotlib; importing does not."""

from ._gate import GateDisplay
from ._usage import ExpertUsageDisplay

__all__ = ["ExpertUsageDisplay", "GateDisplay"]
