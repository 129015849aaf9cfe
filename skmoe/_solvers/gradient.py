"""Gradient training (``solver="gradient"``): minibatch Adam on the objective EM
maximises, the mean log-likelihood less the penalties.

With the built-in network experts, gate and experts are trained jointly, end
to end: each minibatch step moves every parameter along the gradient of the
minibatch objective. With arbitrary estimators, which have no gradient, this
is a generalised EM: each epoch refits the experts by weighted fit on the
responsibilities, as EM does, then moves the gate by an epoch of Adam steps.

Gradients are written out in NumPy. For a row with log-likelihood
``l = log sum_k g_k p_k``, ``dl / d log p_k = r_k`` and ``dl / d logit_k = r_k - g_k``
(``r`` the row's responsibilities), the identities EM is built on.

Training runs in the input's floating type: with float32 X the network
experts' parameters, the minibatch products and the passes over all rows are
float32; the objective's sums over the rows are taken in float64.
"""

import numpy as np
from scipy.special import expit
from sklearn.utils.extmath import safe_sparse_dot

from .._compat import AdamOptimizer
from .._em import e_step, posteriors, restart_experts
from .._math import exp_floored, log_softmax_rows, weighted_sum
from ..gates._balance import BALANCE_LOSSES, noisy_load_cv_loss
from .em import dead_experts
from .result import FitResult
from .stopping import Best, validation_score

# The default minibatch size, as scikit-learn's MLP estimators: min(200, n_samples).
_AUTO_BATCH_SIZE = 200

# On a plateau the step size is divided by _DECAY_FACTOR, up to this many times,
# before training stops (scikit-learn's "adaptive" schedule of SGD). Minibatch
# noise keeps Adam at a constant step about the optimum; smaller steps let it
# settle, and sharpen the gate, which EM reaches by Newton steps.
_LEARNING_RATE_DECAYS = 3
_DECAY_FACTOR = 5.0


def _gate_params(gate, noisy):
    params = [gate.coef_, gate.intercept_]
    if noisy:
        params += [gate.noise_coef_, gate.noise_intercept_]
    return params


def _batch_gradients(
    plan, likelihood, gate, experts, Z, y, weight, fixed_log_lik, params, rng, scale
):
    """Gradients, in the order of ``_gate_params`` then the experts' parameters,
    of the objective to minimise on one minibatch:
    ``-sum_i a_i l_i + balance_coef * balance + penalties / scale``, with
    ``a = weight / weight.sum()`` and ``scale`` the total training weight.
    ``plan`` gives ``gate_noise``, ``balance_loss`` and ``balance_coef``."""
    noisy = plan.gate_noise
    share = weight / weight.sum()
    logits = gate.logits_standardized(Z)
    routed = logits
    if noisy:  # Shazeer et al. (2017): logits + N(0, 1) * softplus(Z @ W_noise)
        noise_logits = safe_sparse_dot(Z, gate.noise_coef_) + gate.noise_intercept_
        noise_std = np.logaddexp(0.0, noise_logits)
        noise = rng.standard_normal(logits.shape).astype(logits.dtype, copy=False)
        routed = logits + noise * noise_std
    log_gate = gate.log_proba_from_logits(routed)
    if fixed_log_lik is None:
        outputs, cache = experts.forward(Z)
        log_lik, grad_outputs = likelihood.log_lik_grad(outputs, y, params)
    else:
        log_lik = fixed_log_lik
    resp = exp_floored(e_step(log_gate, log_lik)[0])
    grad_routed = -share[:, None] * (resp - exp_floored(log_gate))
    grad_logits = grad_routed
    if noisy:
        grad_std = grad_routed * noise
    if plan.balance_loss is not None:
        proba = exp_floored(log_softmax_rows(logits))
        grad_logits = (
            grad_logits + plan.balance_coef * BALANCE_LOSSES[plan.balance_loss](proba, weight)[1]
        )
        if noisy and plan.balance_loss == "cv" and gate.top_k < logits.shape[1]:
            _, grad_load_logits, grad_load_std = noisy_load_cv_loss(
                logits, noise_std, noise, gate.top_k, weight
            )
            grad_logits = grad_logits + plan.balance_coef * grad_load_logits
            grad_std = grad_std + plan.balance_coef * grad_load_std
    grads = [
        safe_sparse_dot(Z.T, grad_logits) + gate.alpha / scale * gate.coef_,
        grad_logits.sum(axis=0),
    ]
    if noisy:
        grad_noise_logits = grad_std * expit(noise_logits)
        grads += [safe_sparse_dot(Z.T, grad_noise_logits), grad_noise_logits.sum(axis=0)]
    if fixed_log_lik is None:
        grad_outputs = -(share[:, None] * resp)[..., None] * grad_outputs
        grads += experts.backward(cache, grad_outputs, penalty_weight=1.0 / scale)
    return grads


def _minibatches(n_samples, batch_size, rng):
    order = rng.permutation(n_samples)
    return (order[start : start + batch_size] for start in range(0, n_samples, batch_size))


class Gradient:
    """Gradient training of one plan (see :mod:`skmoe._plan`) under
    ``likelihood``, scored on the held-out rows ``validation``,
    ``(X, y, sample_weight)``, where given."""

    def __init__(self, plan, likelihood, printer, validation=None):
        self.plan = plan
        self.likelihood = likelihood
        self.printer = printer
        self.validation = validation

    def fit(self, gate, experts, X, Z, y, sample_weight, resp, rng):
        """Train from initial responsibilities until the score stops improving.

        The score is the objective on the training rows, or the mean
        log-likelihood of the validation rows; training stops once it has
        not improved by ``tol`` for ``n_iter_no_change`` epochs in a row, as
        in scikit-learn's MLP estimators, after the step size was cut on
        each of the first plateaus. With a validation set the best epoch's parameters are kept.
        """
        plan, data, validation = self.plan, (X, Z, y, sample_weight), self.validation
        total = float(sample_weight.sum())
        self._prepare(gate, experts, Z)
        restarts = np.zeros(resp.shape[1], dtype=int)
        lower_bounds, scores, best = [], [], Best(keep=validation is not None)
        optimizer, decays, converged = None, 0, False
        for _ in range(plan.max_iter):
            params, optimizer = self._epoch(gate, experts, *data, resp, rng, optimizer)
            resp, row_log_lik, lower_bound = self._e_step(gate, experts, *data, params)
            previous = lower_bounds[-1] if lower_bounds else -np.inf
            lower_bounds.append(lower_bound)
            self.printer.iter_end(lower_bound, lower_bound - previous)
            # every epoch is scored, so validation_scores_ runs along lower_bounds_
            score = lower_bound
            if validation is not None:
                score = validation_score(self.likelihood, gate, experts, params, validation)
                scores.append(score)
            best.update(score, plan.tol, (gate, experts, params, lower_bound))
            dead = dead_experts(resp, sample_weight, total, restarts, plan.min_expert_load)
            if dead.size:  # restart as EM does: the worst-fitted rows, then fresh parameters
                resp = restart_experts(resp, dead, sample_weight, row_log_lik, rng)
                gate.fit_standardized(Z, resp * sample_weight[:, None])
                for k in dead if plan.builtin else ():
                    experts.reset_expert(k, rng)
                restarts[dead] += 1
                optimizer, best.no_change = None, 0
            elif best.no_change > plan.n_iter_no_change:
                if decays == _LEARNING_RATE_DECAYS:
                    converged = True
                    break
                optimizer.learning_rate_init /= _DECAY_FACTOR
                decays, best.no_change = decays + 1, 0
        if best.state is not None:
            gate, experts, params, lower_bound = best.state
        return FitResult(
            gate=gate,
            experts=experts,
            params=params,
            converged=converged,
            lower_bound=lower_bound,
            lower_bounds=np.asarray(lower_bounds),
            validation_scores=np.asarray(scores) if validation is not None else None,
            n_expert_restarts=int(restarts.sum()),
            # minibatch steps are noisy: the objective rises and falls between epochs
            n_objective_falls=int(np.sum(np.diff(lower_bounds) < 0)),
        )

    def _prepare(self, gate, experts, Z):
        """The network experts in Z's floating type, and the noisy gate's
        noise weights where it has none."""
        if self.plan.builtin:
            experts.params = [p.astype(Z.dtype, copy=False) for p in experts.params]
        if self.plan.gate_noise and not hasattr(gate, "noise_coef_"):
            # noise of scale softplus(0) to start, as Shazeer et al.
            gate.noise_coef_ = np.zeros_like(gate.coef_)
            gate.noise_intercept_ = np.zeros_like(gate.intercept_)

    def _epoch(self, gate, experts, X, Z, y, sample_weight, resp, rng, optimizer):
        """One pass of Adam steps over minibatches; wrapped experts are refitted
        on the responsibilities first. Returns the likelihood's parameters and
        the optimizer (a new one where None is given)."""
        plan, likelihood = self.plan, self.likelihood
        differentiable = plan.builtin
        weights = resp * sample_weight[:, None]
        if not differentiable:
            experts.fit(X, y, weights, random_state=rng)
        outputs = likelihood.outputs(experts, X)
        params = likelihood.update_params(experts, outputs, y, weights)
        fixed_log_lik = None if differentiable else likelihood.log_lik(outputs, y, params)
        trained = _gate_params(gate, plan.gate_noise) + (experts.params if differentiable else [])
        if optimizer is None:
            optimizer = AdamOptimizer(trained, learning_rate_init=plan.learning_rate_init)
        batch_size = _AUTO_BATCH_SIZE if plan.batch_size == "auto" else plan.batch_size
        total_weight = float(sample_weight.sum())
        for rows in _minibatches(len(resp), min(batch_size, len(resp)), rng):
            if not sample_weight[rows].sum() > 0:
                continue
            fixed = None if differentiable else fixed_log_lik[rows]
            batch = (Z[rows], y[rows], sample_weight[rows], fixed)
            grads = _batch_gradients(
                plan, likelihood, gate, experts, *batch, params, rng, total_weight
            )
            optimizer.update_params(trained, grads)
        return params, optimizer

    def _e_step(self, gate, experts, X, Z, y, sample_weight, params):
        """The responsibilities, each row's log-likelihood and the objective."""
        likelihood = self.likelihood
        log_lik = likelihood.experts_log_lik(experts, X, y, params)
        resp, _, row_log_lik = posteriors(gate, Z, log_lik)
        gate.record_balance_penalty(Z, sample_weight)
        expert_penalty = float(experts.penalty()) if self.plan.builtin else 0.0
        log_lik_sum = weighted_sum(sample_weight, row_log_lik)
        lower_bound = (log_lik_sum - gate.penalty() - expert_penalty) / float(sample_weight.sum())
        return resp, row_log_lik, lower_bound
