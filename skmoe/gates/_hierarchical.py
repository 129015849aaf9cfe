"""A tree of softmax gates: the gate of a hierarchical mixture of experts."""

from math import prod

import numpy as np

from .._backend import get_namespace
from .._design import Design
from .._math import log_softmax_rows
from ._softmax import SoftmaxGate


class HierarchicalGate(SoftmaxGate):
    """Jordan & Jacobs' (1994) tree of softmax gates over the leaves (experts).

    With ``branching=(4, 4)`` a root gate chooses among 4 branches and each
    branch's gate among its 4 experts; expert ``4 * a + b`` gets the
    probability ``g_a(x) * g_{b | a}(x)``. The leaves' log-probabilities serve
    as the logits of the flat gate this class extends, so top-k selection,
    prediction and the E-step are shared; only fitting differs. In EM, each
    node's gate is fitted to the posterior of its children given that the
    node was reached: the responsibilities summed over each child's leaves,
    which is how the nested posteriors factor.

    Parameters
    ----------
    branching : tuple of int
        Children per node at each level, from the root; the product is the
        number of experts. ``(K,)`` is the flat softmax gate.
    alpha, max_iter, tol, top_k, balance_loss, balance_coef
        As :class:`SoftmaxGate`; all but ``top_k`` (which applies to the
        leaves) are passed to every node's gate.

    Attributes
    ----------
    scaler_ : StandardScaler
    gates_ : list of list of SoftmaxGate
        The node gates of each level; level ``l`` has
        ``prod(branching[:l])`` of them, in the order of the leaves.
    """

    _parameter_constraints: dict = {**SoftmaxGate._parameter_constraints, "branching": [tuple]}

    def __init__(
        self,
        branching=(2, 2),
        *,
        alpha=1.0,
        max_iter=100,
        tol=1e-6,
        top_k=None,
        balance_loss=None,
        balance_coef=0.01,
    ):
        super().__init__(
            alpha,
            max_iter=max_iter,
            tol=tol,
            top_k=top_k,
            balance_loss=balance_loss,
            balance_coef=balance_coef,
        )
        self.branching = branching

    def _node_params(self):
        params = self.get_params()
        del params["branching"], params["top_k"]
        return params

    def _levels(self):
        """``(n_nodes, n_children, n_leaves_below_each_child)`` per level."""
        return [
            (prod(self.branching[:level]), b, prod(self.branching[level + 1 :]))
            for level, b in enumerate(self.branching)
        ]

    def fit_standardized(self, Z, targets, design=None):
        """M-step of every node gate; ``targets`` are the leaves' weighted
        responsibilities, shape (n_samples, prod(branching)); ``design`` as
        :meth:`SoftmaxGate.fit_standardized`'s, shared by the nodes."""
        design = Design(Z) if design is None else design
        if not hasattr(self, "gates_"):
            self.gates_ = [[SoftmaxGate() for _ in range(n)] for n, _, _ in self._levels()]
        for gates, (n_nodes, n_children, below) in zip(self.gates_, self._levels(), strict=True):
            child_targets = targets.reshape(len(targets), n_nodes, n_children, below).sum(axis=3)
            for node, gate in enumerate(gates):
                gate.set_params(**self._node_params())
                node_targets = child_targets[:, node]
                if bool(node_targets.any()):
                    gate.fit_standardized(Z, node_targets, design)
                elif not hasattr(gate, "coef_"):
                    # a branch no row has reached yet starts uniform (the
                    # optimum for uniform targets); later it keeps its gate
                    gate.fit_standardized(Z, get_namespace(Z).ones_like(node_targets), design)
        return self

    def logits_standardized(self, Z):
        """The leaves' log-probabilities: each path's node log-probabilities summed."""
        xp = get_namespace(Z)
        log_proba = xp.zeros((Z.shape[0], 1), dtype=Z.dtype)
        for gates in self.gates_:
            node_log_proba = [log_softmax_rows(gate.logits_standardized(Z)) for gate in gates]
            # each leaf so far splits into its node's children
            log_proba = (log_proba[:, :, None] + xp.stack(node_log_proba, axis=1)).reshape(
                len(log_proba), -1
            )
        return log_proba

    def coefficients(self):
        """The node gates' arrays, level by level."""
        return [a for gates in self.gates_ for gate in gates for a in gate.coefficients()]

    def set_coefficients(self, arrays):
        """Set the node gates' arrays from the front of ``arrays``; returns the rest."""
        for gates in self.gates_:
            for gate in gates:
                arrays = gate.set_coefficients(arrays)
        return arrays

    def record_balance_penalty(self, Z, row_weight):
        for gates in self.gates_:
            for gate in gates:
                gate.record_balance_penalty(Z, row_weight)
        return self

    def _chosen_alphas(self):
        return np.array([gate.alpha_ for gates in self.gates_ for gate in gates])

    def penalty(self):
        """The node gates' penalties, summed."""
        return sum(gate.penalty() for gates in self.gates_ for gate in gates)

    def n_parameters(self):
        return sum(gate.n_parameters() for gates in self.gates_ for gate in gates)
