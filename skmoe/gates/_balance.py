"""Load-balancing losses of a softmax gate, as functions of its probabilities.

Each takes the dense gate probabilities ``proba`` (n_samples, n_experts) and the
row weights, and returns the loss (in its published, per-row-mean form) and its
gradient with respect to the gate's logits. Both gradients have the form
``w_i g_ij (a_j - g_i . a)``: the chain rule through the softmax of a loss whose
gradient with respect to ``g_ij`` is ``w_i a_j``.
"""

import numpy as np
import scipy.special


def _through_softmax(proba, row_weight, a):
    """Gradient on the logits of a loss whose gradient on ``proba[i, j]`` is
    ``row_weight[i] * a[j]``; in ``proba``'s floating type."""
    a = a.astype(proba.dtype, copy=False)  # a float64 ``a`` would promote (n, K) arrays
    return row_weight[:, None] * proba * (a - (proba @ a)[:, None])


def switch_loss(proba, row_weight):
    """Switch Transformer's loss ``K * sum_k f_k P_k`` (Fedus et al., 2021).

    ``f_k`` is the weighted share of rows whose most probable expert is ``k``
    (piecewise constant: no gradient flows through it, as in the paper) and
    ``P_k`` the weighted mean gate probability of ``k``. Equals 1 when both
    are uniform; larger when the gate favours some experts.
    """
    n_experts = proba.shape[1]
    total = row_weight.sum()
    top = np.bincount(proba.argmax(axis=1), weights=row_weight, minlength=n_experts) / total
    mean_proba = row_weight @ proba / total
    a = n_experts * top / total
    return n_experts * top @ mean_proba, _through_softmax(proba, row_weight, a)


def importance_cv_loss(proba, row_weight):
    """Squared coefficient of variation of the experts' importance (Shazeer et
    al., 2017): ``CV(I)^2`` with ``I_k = sum_i w_i g_ik``. 0 when balanced.
    """
    n_experts = proba.shape[1]
    total = row_weight.sum()
    deviation = row_weight @ proba - total / n_experts  # the mean importance is fixed
    value = n_experts * deviation @ deviation / total**2
    a = 2 * n_experts * deviation / total**2
    return value, _through_softmax(proba, row_weight, a)


BALANCE_LOSSES = {"switch": switch_loss, "cv": importance_cv_loss}


def noisy_load_cv_loss(logits, noise_std, noise, k, row_weight):
    """Squared coefficient of variation of the experts' smooth load under noisy
    top-k gating (Shazeer et al., 2017, appendix A).

    The noisy logits are ``logits + noise * noise_std``. ``P[i, j]``, the
    probability that expert ``j`` stays in row ``i``'s top ``k`` if its own
    noise is drawn anew, is ``Phi((logits[i, j] - t[i, j]) / noise_std[i, j])``,
    ``t[i, j]`` being the ``k``-th largest noisy logit of the row other than
    ``j``'s. The load is ``L_j = sum_i w_i P[i, j]``. Unlike the count of rows
    routed, it has a gradient, through the noise scale too.

    Returns the loss and its gradients with respect to ``logits`` and
    ``noise_std`` (the thresholds ``t`` are noisy logits, and pass theirs on).
    """
    n_experts = logits.shape[1]
    noisy = logits + noise * noise_std
    order = np.argsort(-noisy, axis=1, kind="stable")
    rows = np.arange(len(noisy))[:, None]
    in_top = np.zeros(noisy.shape, dtype=bool)
    in_top[rows, order[:, :k]] = True
    # the k-th largest of the others: the (k+1)-th if j is in the top k, else the k-th
    threshold_at = np.where(in_top, order[:, [k]], order[:, [k - 1]])
    u = (logits - noisy[rows, threshold_at]) / noise_std
    density = np.exp(-0.5 * u**2) / np.sqrt(2 * np.pi)
    load = row_weight @ scipy.special.ndtr(u)
    total, mean = load.sum(), load.mean()
    value = n_experts * np.sum((load - mean) ** 2) / total**2
    grad_load = 2 * n_experts * (load - mean) / total**2 - 2 * value / total
    grad_u = row_weight[:, None] * grad_load * density
    grad_logits = grad_u / noise_std
    grad_std = -grad_u * u / noise_std
    # each threshold is a noisy logit: pass its share back to logits and scale
    grad_threshold = np.zeros_like(noisy)
    np.add.at(grad_threshold, (np.broadcast_to(rows, u.shape), threshold_at), -grad_logits)
    return value, grad_logits + grad_threshold, grad_std + grad_threshold * noise
