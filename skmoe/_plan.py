"""The fit plan: the estimator's options resolved once, for every solver.

Every rule on which options go together lives here, and raises here: the
number of experts and the hierarchy it implies, what EM, gradient training,
online EM and the GPU each support. The plan also builds the gate and the
experts, so that ``fit`` and ``partial_fit`` cannot build them differently.
"""

from dataclasses import dataclass, replace
from math import prod
from numbers import Integral

import numpy as np
from sklearn.base import clone

from ._warn import warn
from .experts import EstimatorExperts
from .experts._estimators import set_random_states, weight_parameter
from .gates import HierarchicalGate, SoftmaxGate

# The most experts n_experts="auto" grows to. Splits stop well before it on
# data of a few regimes; on large tabular data it bounds the fit's cost.
MAX_GROWN_EXPERTS = 32

# Newton steps of the gate per M-step. EM needs each M-step to improve the gate,
# not to solve it: a few warm-started steps do that at a fraction of the cost,
# and the gate converges along with the experts (a generalised EM). Two
# truncated steps reached the scores of three formed-Hessian ones (within
# 0.002 R^2, 3 seeds of 3 sets) at 0.55-0.9x the fit time; one step stopped
# EM earlier, 0.002-0.004 lower (benchmarks/peers.py sets).
_GATE_STEPS_PER_M_STEP = 2


@dataclass(frozen=True)
class FitPlan:
    """The options of one fit, checked and resolved.

    ``hierarchy`` is True for a tree of gates (``n_experts`` a tuple, even of
    one level); ``branching`` is its branching per level, and
    ``(n_experts,)`` for one softmax gate; ``grow`` is True for
    ``n_experts="auto"``, where ``n_experts`` is the most experts the
    mixture may grow to (see :mod:`skmoe._solvers.grow`); ``builtin`` is
    True for the built-in experts (``estimator=None``), and ``templates``
    the estimators given, as a list; the other fields are the estimator's
    parameters of the same names.
    """

    n_experts: int
    grow: bool
    hierarchy: bool
    branching: tuple
    builtin: bool
    templates: list
    solver: str
    top_k: object
    gate_noise: bool
    gate_alpha: float
    balance_loss: object
    balance_coef: float
    min_expert_load: float
    expert_alpha: float | str
    expert_hidden_units: object
    max_iter: int
    tol: float
    learning_rate_init: float
    batch_size: object
    n_iter_no_change: int
    init: object
    expert_failure: str
    n_jobs: object
    random_state: object

    @property
    def penalty_alpha(self):
        """The built-in experts' L2 penalty that EM's objective holds: none for
        wrapped experts, and none for gradient training's network experts,
        which carry their own outside the likelihood."""
        return self.expert_alpha if self.builtin and self.solver == "em" else 0.0

    def sized(self, n_experts):
        """This plan for a mixture of ``n_experts`` experts under one gate."""
        return replace(self, n_experts=n_experts, branching=(n_experts,), grow=False)

    def n_expert_parameters(self, likelihood, n_experts, n_features):
        """See :func:`n_expert_parameters`."""
        return n_expert_parameters(likelihood, n_experts, n_features, self.expert_hidden_units)

    def groups(self, n_experts):
        """Groups of experts that share a parent gate: all of them, or in a
        hierarchy the leaves of each last-level branch."""
        if self.hierarchy:
            return list(np.arange(n_experts).reshape(-1, self.branching[-1]))
        return [np.arange(n_experts)]

    def make_gate(self):
        if self.hierarchy:
            return HierarchicalGate(
                self.branching, alpha=self.gate_alpha, max_iter=_GATE_STEPS_PER_M_STEP
            )
        return SoftmaxGate(self.gate_alpha, max_iter=_GATE_STEPS_PER_M_STEP)

    def gate_options(self):
        """The gate's routing and balancing, set after its start. A ``top_k``
        of ``n_experts`` or more routes every row to every expert: the gate is
        dense."""
        return dict(
            top_k=self.top_k, balance_loss=self.balance_loss, balance_coef=self.balance_coef
        )

    def make_experts(self, likelihood, n_features, rng, scaler):
        """The expert set: the likelihood's built-in experts (network experts
        for gradient training), or clones of the estimators given, each with
        its own seed."""
        if self.builtin and self.solver == "gradient":
            experts = likelihood.network_experts(
                self.n_experts,
                scaler,
                hidden_units=self.expert_hidden_units,
                alpha=self.expert_alpha,
            )
            return experts.init_params(n_features, rng)
        if self.builtin:
            return likelihood.builtin_experts(self.n_experts, self.expert_alpha)
        templates = self.templates * self.n_experts if len(self.templates) == 1 else self.templates
        return EstimatorExperts(
            [set_random_states(clone(t), rng) for t in templates],
            n_classes=likelihood.n_classes,
            n_jobs=self.n_jobs,
        )


def n_expert_parameters(likelihood, n_experts, n_features, hidden_units):
    """Free parameters of ``n_experts`` built-in experts (and their noise):
    a network expert's hidden layer, then its output layer's."""
    hidden, n_inputs = (0, n_features)
    if hidden_units is not None:
        hidden, n_inputs = (n_features + 1) * hidden_units, hidden_units
    return n_experts * (hidden + likelihood.output_parameters(n_inputs))


def estimator_list(estimator):
    """The user's estimators as a list (empty for the built-in experts)."""
    if estimator is None:
        return []
    return estimator if isinstance(estimator, list) else [estimator]


def make_plan(model, n_samples, n_weighted):
    """The plan of ``model``'s fit on ``n_samples`` rows, ``n_weighted`` of
    positive weight; raises on options that do not go together."""
    _check_estimator_list(model)
    n_experts = _resolved_n_experts(model.n_experts, model.estimator)
    grow = n_experts is None
    if grow:
        if not isinstance(model.init, str):
            raise ValueError(
                "init given as responsibilities fixes the number of experts; "
                "n_experts='auto' grows from one expert. Give n_experts as an int."
            )
        n_experts = min(MAX_GROWN_EXPERTS, n_weighted)
    if n_experts > n_samples:
        raise ValueError(
            f"n_experts={n_experts} must be <= n_samples={n_samples}: every expert "
            "needs rows to fit."
        )
    if n_experts > n_weighted:
        raise ValueError(
            f"n_experts={n_experts} must be <= the {n_weighted} rows with positive "
            "sample_weight: every expert needs rows to fit."
        )
    _check_solver_options(model)
    return _plan(model, n_experts, grow)


def make_online_plan(model, n_first_rows=None, growing=False):
    """The plan of a ``partial_fit`` call; on the first, of ``n_first_rows``.
    With ``n_experts="auto"``, the plan of a warm-up fit (``growing``) may
    grow; later ones hold the experts fitted."""
    n_experts = _resolved_n_experts(model.n_experts, model.estimator)
    grow = n_experts is None and growing
    if n_experts is None:
        n_experts = MAX_GROWN_EXPERTS if grow else len(model.estimators_)
    elif n_first_rows is not None and n_experts > n_first_rows:
        raise ValueError(
            f"n_experts={n_experts} must be <= the {n_first_rows} rows of the first "
            "chunk: k-means starts the experts from it."
        )
    return _plan(model, n_experts, grow)


def _plan(model, n_experts, grow):
    branching = model.n_experts if isinstance(model.n_experts, tuple) else (n_experts,)
    resolved = {"n_experts", "grow", "hierarchy", "branching", "builtin", "templates"}
    fields = set(FitPlan.__dataclass_fields__) - resolved
    return FitPlan(
        n_experts=n_experts,
        grow=grow,
        hierarchy=isinstance(model.n_experts, tuple),
        branching=branching,
        builtin=model.estimator is None,
        templates=estimator_list(model.estimator),
        **{name: getattr(model, name) for name in fields},
    )


def online_available(model):
    """True where ``partial_fit`` exists, else an AttributeError that says
    why: the online M-step works on the built-in experts' statistics."""
    if model.estimator is None and model.solver == "em" and not isinstance(model.n_experts, tuple):
        return True
    raise AttributeError(
        "partial_fit needs the built-in experts (estimator=None), solver='em' and one "
        "level of gating (an int n_experts), whose running sufficient statistics online "
        f"EM updates; got estimator={model.estimator!r}, solver={model.solver!r}, "
        f"n_experts={model.n_experts!r}. Use fit on all rows otherwise."
    )


def warn_of_resampled_experts(templates):
    """Warn, once per fit, of the experts whose fit takes no row weights:
    each M-step fits them on a weighted bootstrap of their rows."""
    resampled = sorted({type(t).__name__ for t in templates if weight_parameter(t) is None})
    if resampled:
        warn(
            f"The fit of {', '.join(resampled)} takes no sample_weight: each M-step "
            "fits such an expert on a weighted bootstrap of its rows (drawn from "
            "random_state) instead of weighting them. An estimator whose fit takes "
            "sample_weight (or a Pipeline whose last step does) is fitted exactly."
        )


def check_warm_start(n_fitted, n_experts):
    """A warm start continues the fitted experts: as many as the plan's."""
    if n_fitted != n_experts:
        raise ValueError(
            f"warm_start continues the previous fit's {n_fitted} experts; "
            f"got n_experts={n_experts}. Set warm_start=False to start anew."
        )


def check_online_device(on_device):
    """Online EM's statistics live on the host."""
    if on_device:
        raise ValueError("partial_fit runs on the CPU; use device='cpu' and NumPy input.")


def check_parameter_count(model):
    """``bic`` and ``aic`` count the parameters of the built-in experts only."""
    if model.estimator is not None:
        raise ValueError(
            "bic and aic need the built-in experts (estimator=None), whose number "
            "of parameters is known; it is not for arbitrary estimators."
        )


def check_device_options(model):
    """What runs on the GPU: EM (gradient training stays on the CPU, see
    docs/design.md)."""
    if model.solver != "em":
        raise ValueError("device='cuda' supports solver='em'; use device='cpu'.")


def _check_estimator_list(model):
    if isinstance(model.estimator, list) and not model.estimator:
        raise ValueError("estimator is an empty list; give at least one expert.")
    for i, est in enumerate(estimator_list(model.estimator)):
        missing = [m for m in model._required_methods if not hasattr(est, m)]
        if missing:
            raise TypeError(
                f"estimator[{i}] ({est!r}) has no {' or '.join(missing)} method; every "
                f"expert must implement {', '.join(model._required_methods)}."
            )


def _resolved_n_experts(n_experts, estimator):
    """The number of experts (leaves of a hierarchy), checked against the
    estimators given; None where the mixture grows (``"auto"`` without a
    list of estimators)."""
    if isinstance(n_experts, tuple):
        if not n_experts or not all(
            isinstance(b, Integral) and not isinstance(b, bool) and b >= 1 for b in n_experts
        ):
            raise ValueError(
                "n_experts as a tuple gives the branching of each level of a "
                f"hierarchy: positive integers, at least one; got {n_experts!r}."
            )
    n_leaves = prod(n_experts) if isinstance(n_experts, tuple) else n_experts
    if isinstance(estimator, list):
        if n_leaves != "auto" and n_leaves != len(estimator):
            raise ValueError(
                f"n_experts={n_experts} does not match the {len(estimator)} "
                "estimators given; leave n_experts='auto' with a list of estimators."
            )
        return len(estimator)
    return None if n_leaves == "auto" else n_leaves


def _check_solver_options(model):
    """Refuse the combinations of options that have no meaning."""
    if model.solver == "em":
        for name in ("gate_noise", "expert_hidden_units"):
            if getattr(model, name) not in (False, None):
                raise ValueError(
                    f"{name}={getattr(model, name)!r} needs solver='gradient': EM has "
                    "no gradient step that could learn it."
                )
    if model.solver == "gradient" and isinstance(model.n_experts, tuple):
        raise ValueError(
            f"n_experts={model.n_experts!r} builds a hierarchy of gates, which is "
            "trained by EM only; use solver='em'."
        )
    if model.gate_noise and model.top_k is None:
        raise ValueError(
            "gate_noise=True needs top_k: the noise decides which experts enter "
            "each row's top k, and a dense gate has no such choice."
        )
    if model.expert_failure == "drop" and (
        model.solver != "em" or isinstance(model.n_experts, tuple)
    ):
        raise ValueError(
            "expert_failure='drop' needs solver='em' and one level of gating: "
            "only there can the gate be renormalised over the remaining experts."
        )
    if model.expert_alpha == "auto" and model.solver != "em" and model.estimator is None:
        raise ValueError(
            "expert_alpha='auto' chooses each built-in expert's penalty at each M-step "
            "of EM; solver='gradient' trains network experts, whose penalty is a number."
        )
    if model.gate_alpha == "auto" and model.solver != "em":
        raise ValueError(
            "gate_alpha='auto' moves the gate's penalty at each M-step of EM; "
            "solver='gradient' takes a number."
        )
    if model.expert_hidden_units is not None and model.estimator is not None:
        raise ValueError(
            "expert_hidden_units sets the built-in network experts; it cannot apply "
            "to the estimators given."
        )
