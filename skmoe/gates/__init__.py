"""Gates: models of which expert answers each row."""

from ._hierarchical import HierarchicalGate
from ._softmax import SoftmaxGate

__all__ = ["HierarchicalGate", "SoftmaxGate"]
