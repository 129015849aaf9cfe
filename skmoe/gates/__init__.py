"""Gates: models of which expert answers each row."""

from ._softmax import SoftmaxGate

__all__ = ["SoftmaxGate"]
