"""The softmax and the soft-target softmax cross-entropy by fused CUDA
kernels, where they apply: from the logits, one row-wise kernel (see
:mod:`._kernels`); from the rows and the coefficients, one tiled kernel (see
:mod:`._tiled`).

Each function answers None for NumPy input and for sizes beyond its kernel;
the caller then composes the loss from array operations, on either device.
"""

from . import is_cupy_array


def fused_softmax_cross_entropy(logits, targets):
    """:func:`skmoe._math.softmax_cross_entropy` of 2-D CuPy logits, of at
    most ``MAX_EXPERTS`` columns, in one pass: the loss (a 0-d array), its
    gradient with respect to ``logits`` and ``softmax(logits)``; None for
    other input."""
    if not is_cupy_array(logits):
        return None
    from ._kernels import MAX_EXPERTS, softmax_cross_entropy_kernel

    if logits.ndim != 2 or logits.shape[1] > MAX_EXPERTS:
        return None
    return softmax_cross_entropy_kernel(logits, targets)


def fused_softmax(logits):
    """The softmax of each row of 2-D CuPy logits, of at most
    ``MAX_EXPERTS`` columns, in one pass; None for other input."""
    if not is_cupy_array(logits):
        return None
    from ._kernels import MAX_EXPERTS, softmax_kernel

    if logits.ndim != 2 or logits.shape[1] > MAX_EXPERTS:
        return None
    return softmax_kernel(logits)


def softmax_loss_terms(Z, targets):
    """``(coef, intercept) -> terms`` for the cross-entropy of ``Z @ coef +
    intercept`` against ``targets``, by the tiled kernel (see
    :func:`._tiled.softmax_loss_terms`); None for NumPy input or sizes
    beyond the kernel."""
    if not is_cupy_array(Z):
        return None
    from ._tiled import softmax_loss_terms as tiled_loss_terms

    return tiled_loss_terms(Z, targets)


def class_softmax_loss_terms(Z, y, weights, n_classes):
    """``(coef, intercept) -> terms`` for the logistic experts' weighted
    multinomial log-losses side by side, of ``Z @ coef + intercept`` against
    the classes ``y`` with row weights ``weights`` (n, K), by the tiled
    kernel (see :func:`._tiled.class_softmax_loss_terms`); None for NumPy
    input or sizes beyond the kernel."""
    if not is_cupy_array(Z):
        return None
    from ._tiled import class_softmax_loss_terms as tiled_loss_terms

    return tiled_loss_terms(Z, y, weights, n_classes)


def class_softmax_hessian_product(Z, weights, proba):
    """``V -> H V``, float64: the Hessian of the losses of
    :func:`class_softmax_loss_terms` at the probabilities ``proba`` (n, K, C)
    times a change ``V`` (d + 1, K C) of the coefficients, the intercepts'
    row last, by the tiled kernel (see
    :func:`._tiled.class_softmax_hessian_product`); None for NumPy input or
    sizes beyond the kernel."""
    if not is_cupy_array(Z):
        return None
    from ._tiled import class_softmax_hessian_product as tiled_product

    terms = tiled_product(Z, weights, proba)
    if terms is None:
        return None
    return lambda V: terms(V[:-1], V[-1])[1:].reshape(V.shape)  # past the loss's place


def class_log_lik(X, coef, intercept, y, floor):
    """``log max(P_k(y_i | x_i), floor)``, (n, K), for K multinomial logistic
    models of coefficients ``coef`` (K, C, d) and intercepts (K, C), by the
    tiled kernel, which forms no (n, K, C) probabilities (see
    :func:`._tiled.class_log_lik`); None for NumPy input or sizes beyond the
    kernel."""
    if not is_cupy_array(X):
        return None
    from ._tiled import class_log_lik as tiled_log_lik

    return tiled_log_lik(X, coef, intercept, y, floor)
