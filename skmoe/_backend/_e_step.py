"""The E-step by one fused CUDA kernel (see :mod:`._kernels`), where it
applies; None elsewhere, where the caller's array operations run on either
device."""

from . import is_cupy_array


def fused_posteriors(Z, log_lik, top_k, logits):
    """The experts' responsibilities, the gate's targets (the posterior
    under the dense gate) and the per-row log-likelihood, by one kernel, for
    CuPy ``Z`` under a gate of at most ``MAX_EXPERTS`` experts, top-``k`` or
    dense (``top_k`` None or not under the number of experts; see
    :func:`skmoe._em.posteriors`); None for NumPy ``Z`` or more experts.

    ``logits`` gives the gate's logits of ``Z``; it is called only where the
    kernel runs.
    """
    if not is_cupy_array(Z):
        return None
    from ._kernels import MAX_EXPERTS, e_step

    n_experts = log_lik.shape[1]
    if n_experts > MAX_EXPERTS:
        return None
    if top_k is None or top_k >= n_experts:
        # every expert selected: the kernel's dense posterior is the one
        # responsibility, for the experts and the gate alike
        _, _, row_log_lik, dense = e_step(logits(Z), log_lik, n_experts, dense=True, selected=False)
        return dense, dense, row_log_lik
    return _top_k_posteriors(logits(Z), log_lik, top_k)


def _top_k_posteriors(logits, log_lik, top_k):
    from ._kernels import dense_from_top_k, e_step

    resp_top, index, row_log_lik, dense = e_step(logits, log_lik, top_k, dense=True)
    del logits  # let go before the next (n, K) array is made
    return dense_from_top_k(resp_top, index, dense.shape[1]), dense, row_log_lik
