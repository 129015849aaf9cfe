"""SQUAREM: EM accelerated by extrapolating its path through the parameters.

EM climbs slowly where the experts' regimes overlap: each iteration moves the
parameters a short way along a nearly straight path. SQUAREM (Varadhan and
Roland 2008, "Simple and globally convergent methods for accelerating the
convergence of any EM algorithm", Scand. J. Statist. 35) takes three
consecutive iterates ``t0, t1, t2`` and jumps ahead along that path:

    r = t1 - t0,  v = t2 - 2 t1 + t0,  a = -|r| / |v|,
    t' = t0 - 2 a r + a^2 v

(its scheme S3). EM runs one step from ``t'``, and the result is kept only if
its objective beats ``t2``'s, so the accelerated EM still never lowers the
objective. SciPy and scikit-learn have no EM accelerator; the scheme is a few
lines over the parameters' arrays, written here.

The step length weighs all parameters in one norm, so each is put in units
the data do not set: the gate's coefficients are those of the standardised
rows already; the experts' are mapped to the standardised rows too and
divided by the target's scale; the likelihood's own (the regressor's noise
variances) are moved as logarithms, which also keeps them positive. A fit
of X times 1e12 then takes the same steps as the fit of X.
"""

from math import sqrt

from ._backend import get_namespace


def em_iterate(gate, experts, params, unit):
    """The parameters SQUAREM moves, as one list of arrays (see above):
    ``params``, the likelihood's, already free of units; ``unit``, the
    target's scale (1 for class probabilities)."""
    scale, mean = _scaler_arrays(gate.scaler_, experts.coef_)
    coef = experts.coef_ * scale / unit
    intercept = (experts.intercept_ + experts.coef_ @ mean) / unit
    return gate.coefficients() + [coef, intercept] + params


def set_em_iterate(point, gate, experts, unit):
    """Set the gate's and experts' coefficients from ``point``, a list as
    :func:`em_iterate` returns; returns the likelihood's parameters."""
    coef, intercept, *params = gate.set_coefficients(point)
    scale, mean = _scaler_arrays(gate.scaler_, coef)
    experts.coef_ = coef * unit / scale
    experts.intercept_ = intercept * unit - experts.coef_ @ mean
    return params


def _scaler_arrays(scaler, like):
    """The standardisation's scale and mean, on ``like``'s device and in its type."""
    xp = get_namespace(like)
    return (xp.asarray(a, dtype=like.dtype) for a in (scaler.scale_, scaler.mean_))


def _squared_norm(arrays):
    return sum(float(get_namespace(a).vdot(a, a)) for a in arrays)


def squarem_point(t0, t1, t2):
    """SQUAREM's extrapolation from three consecutive EM iterates, each a list
    of arrays; None where it would not reach beyond ``t2`` (step length -1
    gives ``t2`` itself) or is undefined."""
    r = [b - a for a, b in zip(t0, t1, strict=True)]
    v = [c - 2 * b + a for a, b, c in zip(t0, t1, t2, strict=True)]
    r_norm, v_norm = sqrt(_squared_norm(r)), sqrt(_squared_norm(v))
    if not v_norm > 0 or not r_norm < v_norm * 1e30:
        return None
    alpha = -r_norm / v_norm
    if alpha >= -1.0:
        return None
    return [a - 2 * alpha * b + alpha**2 * c for a, b, c in zip(t0, r, v, strict=True)]
