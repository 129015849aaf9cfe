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

import copy

import numpy as np
from scipy.special import expit
from sklearn.utils.extmath import safe_sparse_dot

from ._compat import AdamOptimizer
from ._em import MAX_RESTARTS_PER_EXPERT, e_step, posteriors, restart_experts
from ._math import exp_floored, log_softmax_rows, weighted_sum
from .gates._balance import BALANCE_LOSSES, noisy_load_cv_loss

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


def _batch_gradients(model, gate, experts, Z, y, weight, fixed_log_lik, params, rng, scale):
    """Gradients, in the order of ``_gate_params`` then the experts' parameters,
    of the objective to minimise on one minibatch:
    ``-sum_i a_i l_i + balance_coef * balance + penalties / scale``, with
    ``a = weight / weight.sum()`` and ``scale`` the total training weight."""
    noisy = model.gate_noise
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
        log_lik, grad_outputs = model._likelihood.log_lik_grad(outputs, y, params)
    else:
        log_lik = fixed_log_lik
    resp = exp_floored(e_step(log_gate, log_lik)[0])
    grad_routed = -share[:, None] * (resp - exp_floored(log_gate))
    grad_logits = grad_routed
    if noisy:
        grad_std = grad_routed * noise
    if model.balance_loss is not None:
        proba = exp_floored(log_softmax_rows(logits))
        grad_logits = (
            grad_logits + model.balance_coef * BALANCE_LOSSES[model.balance_loss](proba, weight)[1]
        )
        if noisy and model.balance_loss == "cv" and gate.top_k < logits.shape[1]:
            _, grad_load_logits, grad_load_std = noisy_load_cv_loss(
                logits, noise_std, noise, gate.top_k, weight
            )
            grad_logits = grad_logits + model.balance_coef * grad_load_logits
            grad_std = grad_std + model.balance_coef * grad_load_std
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


def gradient_run(model, gate, experts, X, Z, y, sample_weight, resp, rng, validation):
    """Train from initial responsibilities until the score stops improving.

    The score is the objective on the training rows, or with a ``validation``
    set ``(X, Z, y, sample_weight)`` the mean log-likelihood there; training
    stops once it has not improved by ``tol`` for ``n_iter_no_change`` epochs
    in a row, as in scikit-learn's MLP estimators. With a validation set the
    best epoch's parameters are kept. Returns a result as ``_em_run`` does.
    """
    differentiable = model.estimator is None
    if differentiable:  # trained in Z's floating type
        experts.params = [p.astype(Z.dtype, copy=False) for p in experts.params]
    total_weight = float(sample_weight.sum())
    n_samples, n_experts = resp.shape
    batch_size = _AUTO_BATCH_SIZE if model.batch_size == "auto" else model.batch_size
    batch_size = min(batch_size, n_samples)
    restarts = np.zeros(n_experts, dtype=int)
    lower_bounds, validation_scores = [], []
    best_score, best_state, no_change, converged = -np.inf, None, 0, False
    optimizer = None
    decays = 0
    if model.gate_noise and not hasattr(gate, "noise_coef_"):
        # noise of scale softplus(0) to start, as Shazeer et al.
        gate.noise_coef_ = np.zeros_like(gate.coef_)
        gate.noise_intercept_ = np.zeros_like(gate.intercept_)
    for _ in range(model.max_iter):
        weights = resp * sample_weight[:, None]
        if not differentiable:
            experts.fit(X, y, weights, random_state=rng)
        outputs = model._likelihood.outputs(experts, X)
        params = model._likelihood.update_params(experts, outputs, y, weights)
        fixed_log_lik = None if differentiable else model._likelihood.log_lik(outputs, y, params)
        trained = _gate_params(gate, model.gate_noise) + (experts.params if differentiable else [])
        if optimizer is None:
            optimizer = AdamOptimizer(trained, learning_rate_init=model.learning_rate_init)
        for rows in _minibatches(n_samples, batch_size, rng):
            if not sample_weight[rows].sum() > 0:
                continue
            grads = _batch_gradients(
                model,
                gate,
                experts,
                Z[rows],
                y[rows],
                sample_weight[rows],
                None if differentiable else fixed_log_lik[rows],
                params,
                rng,
                total_weight,
            )
            optimizer.update_params(trained, grads)
        log_lik = model._likelihood.log_lik(model._likelihood.outputs(experts, X), y, params)
        resp, _, row_log_lik = posteriors(gate, Z, log_lik)
        gate.record_balance_penalty(Z, sample_weight)
        expert_penalty = float(experts.penalty()) if differentiable else 0.0
        log_lik_sum = weighted_sum(sample_weight, row_log_lik)
        lower_bound = (log_lik_sum - gate.penalty() - expert_penalty) / total_weight
        lower_bounds.append(lower_bound)
        previous = lower_bounds[-2] if len(lower_bounds) > 1 else -np.inf
        model._print_iter_end(lower_bound, lower_bound - previous)

        # every epoch is scored, so validation_scores_ runs along lower_bounds_
        score = lower_bound
        if validation is not None:
            score = _validation_score(model, gate, experts, params, validation)
            validation_scores.append(score)
        no_change = no_change + 1 if score < best_score + model.tol else 0
        if score > best_score:
            best_score = score
            if validation is not None:
                best_state = copy.deepcopy((gate, experts, params, lower_bound))

        mass = sample_weight @ resp / total_weight
        dead = np.flatnonzero((mass < model.min_expert_load) & (restarts < MAX_RESTARTS_PER_EXPERT))
        if dead.size:  # restart as EM does: the worst-fitted rows, then fresh parameters
            resp = restart_experts(resp, dead, sample_weight, row_log_lik, rng)
            gate.fit_standardized(Z, resp * sample_weight[:, None])
            for k in dead:
                if differentiable:
                    experts.reset_expert(k, rng)
            restarts[dead] += 1
            optimizer, no_change = None, 0
            continue
        if no_change > model.n_iter_no_change:
            if decays < _LEARNING_RATE_DECAYS:
                optimizer.learning_rate_init /= _DECAY_FACTOR
                decays, no_change = decays + 1, 0
                continue
            converged = True
            break
    if best_state is not None:
        gate, experts, params, lower_bound = best_state
    return dict(
        gate=gate,
        experts=experts,
        params=params,
        converged=converged,
        lower_bound=lower_bound,
        lower_bounds=np.asarray(lower_bounds),
        validation_scores=np.asarray(validation_scores) if validation is not None else None,
        n_expert_restarts=int(restarts.sum()),
        # minibatch steps are noisy: the objective rises and falls between epochs
        n_objective_falls=int(np.sum(np.diff(lower_bounds) < 0)),
        n_merges=0,
    )


def _validation_score(model, gate, experts, params, validation):
    """Weighted mean log-likelihood of the held-out rows under the current model."""
    X, y, sample_weight = validation
    Z = gate.standardize(X)
    log_lik = model._likelihood.log_lik(model._likelihood.outputs(experts, X), y, params)
    row_log_lik = e_step(gate.log_proba_standardized(Z), log_lik)[1]
    return float(np.average(row_log_lik, weights=sample_weight))
