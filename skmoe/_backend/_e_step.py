"""The E-step under a top-k gate by one fused CUDA kernel (see
:mod:`._kernels`), where it applies; None elsewhere, where the caller's
array operations run on either device."""

from . import is_cupy_array


def fused_posteriors(Z, log_lik, top_k, logits):
    """The experts' responsibilities, the gate's targets (the posterior
    under the dense gate) and the per-row log-likelihood, by one kernel, for
    CuPy ``Z`` under a top-``k`` gate of at most ``MAX_EXPERTS`` experts
    (see :func:`skmoe._em.posteriors`); None for NumPy ``Z``, a dense gate
    (``top_k`` None or not under the number of experts) or more experts.

    ``logits`` gives the gate's logits of ``Z``; it is called only where the
    kernel runs.
    """
    if not (is_cupy_array(Z) and top_k is not None):
        return None
    from ._kernels import MAX_EXPERTS

    if not top_k < log_lik.shape[1] <= MAX_EXPERTS:
        return None
    return _top_k_posteriors(logits(Z), log_lik, top_k)


def _top_k_posteriors(logits, log_lik, top_k):
    from ._kernels import dense_from_top_k, e_step

    resp_top, index, row_log_lik, dense = e_step(logits, log_lik, top_k, dense=True)
    del logits  # let go before the next (n, K) array is made
    return dense_from_top_k(resp_top, index, dense.shape[1]), dense, row_log_lik
