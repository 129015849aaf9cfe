"""The GPU's one-pass prediction of a mixture of linear experts under a
softmax gate (dense or top-k)."""

from . import get_namespace
from ._kernels import MAX_EXPERTS
from ._tiled import mixture_predict


def fused_predict_fits(n_experts):
    """Whether the fused kernel takes ``n_experts`` experts."""
    return n_experts <= MAX_EXPERTS


def linear_mixture_mean(X, gate, experts):
    """The mixture mean from X's product with the gate's weights (its input
    standardisation folded in) beside the experts' coefficients, each row's
    top-k experts picked and their means weighed in the same kernel; X is
    read once and nothing of size n x K is written. ``gate`` is a fitted
    softmax gate, ``experts`` fitted linear experts, both on the device."""
    xp = get_namespace(X)
    scale = xp.asarray(gate.scaler_.scale_, dtype=X.dtype)
    mean = xp.asarray(gate.scaler_.mean_, dtype=X.dtype)
    gate_coef = gate.coef_ / scale[:, None]
    weights = xp.concatenate([gate_coef, experts.coef_.T], axis=1)
    bias = xp.concatenate([gate.intercept_ - mean @ gate_coef, experts.intercept_])
    n_experts = len(experts.intercept_)
    return mixture_predict(X, weights, bias, min(gate.top_k or n_experts, n_experts))
