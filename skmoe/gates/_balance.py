"""Load-balancing losses of a softmax gate, as functions of its probabilities.

Each takes the dense gate probabilities ``proba`` (n_samples, n_experts) and the
row weights, and returns the loss (in its published, per-row-mean form) and its
gradient with respect to the gate's logits. Both gradients have the form
``w_i g_ij (a_j - g_i . a)``: the chain rule through the softmax of a loss whose
gradient with respect to ``g_ij`` is ``w_i a_j``.
"""

import numpy as np


def _through_softmax(proba, row_weight, a):
    """Gradient on the logits of a loss whose gradient on ``proba[i, j]`` is
    ``row_weight[i] * a[j]``."""
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
