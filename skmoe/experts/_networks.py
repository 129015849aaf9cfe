"""K small networks trained by gradient: the differentiable built-in experts.

Used by ``solver="gradient"``. Each expert maps the standardised input to
``n_outputs`` values (a regression mean, or one logit per class), either
linearly or through one hidden layer of ReLU units. Forward and backward
passes are written out in NumPy, all K experts at once: the linear experts
and the hidden layers are one matrix product over the rows each.
"""

import numpy as np
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils.extmath import safe_sparse_dot

from .._backend._scaling import standardize
from .._math import exp_floored, log_softmax_rows


def _glorot(rng, fan_in, fan_out, shape):
    """Uniform Glorot initialisation, as :class:`~sklearn.neural_network.MLPRegressor`."""
    bound = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-bound, bound, size=shape)


class NetworkExperts:
    """``n_experts`` networks with parameters in :attr:`params`, updated in place.

    Parameters
    ----------
    n_experts : int
    n_outputs : int
        1 for regression (the mean), the number of classes for classification.
    scaler : StandardScaler
        The gate's fitted input standardisation; the experts see the same input.
    hidden_units : int or None
        None: linear experts ``Z @ W_k + b_k``. An int ``H``: one hidden layer,
        ``relu(Z @ W1_k + b1_k) @ W2_k + b2_k``.
    alpha : float
        L2 penalty ``alpha / 2 * ||weights||^2`` on the weights (not biases).
    y_offset, y_scale : float
        Outputs are ``y_offset + y_scale * network(Z)``, so that the network
        learns a target of unit scale whatever the units of ``y``.
    classes : ndarray or None
        The class labels (classification), for :meth:`to_estimators`.
    """

    def __init__(
        self,
        n_experts,
        n_outputs,
        scaler,
        *,
        hidden_units,
        alpha,
        y_offset=0.0,
        y_scale=1.0,
        classes=None,
    ):
        self.n_experts = n_experts
        self.n_outputs = n_outputs
        self.scaler = scaler
        self.hidden_units = hidden_units
        self.alpha = alpha
        self.y_offset = y_offset
        self.y_scale = y_scale
        self.classes = classes

    # ------------------------------------------------------------------ parameters
    def init_params(self, n_features, rng):
        """Linear experts start at 0 (the gate separates them); hidden layers at
        random, which breaks the symmetry between units."""
        K, m, H = self.n_experts, self.n_outputs, self.hidden_units
        if H is None:
            self.params = [np.zeros((n_features, K * m)), np.zeros(K * m)]
        else:
            self.params = [
                _glorot(rng, n_features, H, (K, n_features, H)),
                _glorot(rng, n_features, H, (K, H)),
                _glorot(rng, H, m, (K, H, m)),
                _glorot(rng, H, m, (K, m)),
            ]
        return self

    def reset_expert(self, k, rng):
        """Give expert ``k`` fresh initial parameters (a restart)."""
        fresh = NetworkExperts(
            self.n_experts,
            self.n_outputs,
            self.scaler,
            hidden_units=self.hidden_units,
            alpha=self.alpha,
        ).init_params(self.params[0].shape[-2], rng)
        for param, new in zip(self.params, fresh.params, strict=True):
            if self.hidden_units is None:
                block = slice(k * self.n_outputs, (k + 1) * self.n_outputs)
                param[..., block] = new[..., block]
            else:
                param[k] = new[k]

    def _weights(self):
        """The penalised parameters, each of shape (K, ...)."""
        if self.hidden_units is None:
            W = self.params[0]
            return [W.reshape(W.shape[0], self.n_experts, self.n_outputs).transpose(1, 0, 2)]
        return [self.params[0], self.params[2]]

    def squared_norms(self):
        """``||weights_k||^2`` per expert: the penalised quantity."""
        return sum((w**2).reshape(self.n_experts, -1).sum(axis=1) for w in self._weights())

    def penalty(self):
        return 0.5 * self.alpha * self.squared_norms().sum()

    # ------------------------------------------------------------------ passes
    def forward(self, Z):
        """Outputs of shape (n_samples, n_experts, n_outputs), and what
        :meth:`backward` needs."""
        n, K, m = Z.shape[0], self.n_experts, self.n_outputs
        # in Z's floating type, whatever the parameters' (the same in training)
        params = [p.astype(Z.dtype, copy=False) for p in self.params]
        if self.hidden_units is None:
            W, b = params
            net = safe_sparse_dot(Z, W) + b
            cache = (Z,)
        else:
            W1, b1, W2, b2 = params
            H = self.hidden_units
            W1_flat = W1.transpose(1, 0, 2).reshape(-1, K * H)
            hidden = np.maximum(safe_sparse_dot(Z, W1_flat).reshape(n, K, H) + b1, 0.0)
            net = np.einsum("nkh,khm->nkm", hidden, W2) + b2
            cache = (Z, hidden)
        # Python floats: a NumPy float64 scalar would promote float32 outputs
        return float(self.y_offset) + float(self.y_scale) * net.reshape(n, K, m), cache

    def backward(self, cache, grad_outputs, *, penalty_weight):
        """Gradients of the parameters, in the order of :attr:`params`, of an
        objective with gradient ``grad_outputs`` on the outputs plus
        ``penalty_weight`` times :meth:`penalty`."""
        decay = penalty_weight * self.alpha
        grad_net = float(self.y_scale) * grad_outputs
        n, K = grad_net.shape[:2]
        if self.hidden_units is None:
            (Z,) = cache
            grad_net = grad_net.reshape(n, -1)
            W = self.params[0]
            return [safe_sparse_dot(Z.T, grad_net) + decay * W, grad_net.sum(axis=0)]
        Z, hidden = cache
        W1, _, W2, _ = self.params
        grad_W2 = np.einsum("nkh,nkm->khm", hidden, grad_net) + decay * W2
        grad_hidden = np.einsum("nkm,khm->nkh", grad_net, W2) * (hidden > 0)
        grad_W1 = safe_sparse_dot(Z.T, grad_hidden.reshape(n, -1))
        grad_W1 = grad_W1.reshape(-1, K, self.hidden_units).transpose(1, 0, 2)
        return [
            grad_W1 + decay * W1,
            grad_hidden.sum(axis=0),
            grad_W2,
            grad_net.sum(axis=0),
        ]

    # ------------------------------------------------------------------ outputs
    def _outputs(self, X):
        return self.forward(standardize(self.scaler, X))[0]

    def predict(self, X):
        """Every expert's mean, shape (n_samples, n_experts)."""
        return self._outputs(X)[..., 0]

    def predict_proba(self, X):
        """Every expert's class probabilities, shape (n_samples, n_experts, n_classes)."""
        return exp_floored(log_softmax_rows(self._outputs(X)))

    # ------------------------------------------------------------------ export
    def _raw_first_layer(self, W, b):
        """``(W, b)`` of a layer on standardised input, rewritten for raw input."""
        scale = self.scaler.scale_
        mean = self.scaler.mean_ if self.scaler.with_mean else np.zeros_like(scale)
        W_raw = (W / scale[:, None]).astype(W.dtype, copy=False)  # the scaler's is float64
        return W_raw, (b - mean @ W_raw).astype(b.dtype, copy=False)

    def to_estimators(self):
        """One fitted scikit-learn estimator per expert that predicts as it does:
        Ridge / LogisticRegression for linear experts, MLPRegressor /
        MLPClassifier for hidden layers."""
        K, m = self.n_experts, self.n_outputs
        experts = []
        for k in range(K):
            if self.hidden_units is None:
                W, b = self.params
                layers = [(W[:, k * m : (k + 1) * m], b[k * m : (k + 1) * m])]
            else:
                W1, b1, W2, b2 = self.params
                layers = [(W1[k], b1[k]), (W2[k], b2[k])]
            layers[0] = self._raw_first_layer(*layers[0])
            W_out, b_out = layers[-1]
            if self.classes is None:
                y_scale, y_offset = float(self.y_scale), float(self.y_offset)
                layers[-1] = (y_scale * W_out, y_scale * b_out + y_offset)
            elif m == 2:  # two logits: their difference is the binary logit
                layers[-1] = (W_out[:, 1:] - W_out[:, :1], b_out[1:] - b_out[:1])
            experts.append(self._estimator(layers))
        return experts

    def _estimator(self, layers):
        n_features = layers[0][0].shape[0]
        if self.hidden_units is None:
            ((W, b),) = layers
            if self.classes is None:
                est = Ridge(alpha=self.alpha)
                est.coef_, est.intercept_ = W[:, 0].copy(), float(b[0])
            else:
                est = LogisticRegression(C=1.0 / self.alpha if self.alpha else np.inf)
                est.coef_, est.intercept_ = W.T.copy(), b.copy()
                est.classes_ = self.classes
        else:
            params = dict(hidden_layer_sizes=(self.hidden_units,), alpha=self.alpha)
            if self.classes is None:
                est = MLPRegressor(**params)
                est.out_activation_ = "identity"
            else:
                est = MLPClassifier(**params)
                est.classes_ = self.classes
                est._label_binarizer = LabelBinarizer().fit(self.classes)
                est.out_activation_ = "logistic" if len(self.classes) == 2 else "softmax"
            est.coefs_ = [W.copy() for W, _ in layers]
            est.intercepts_ = [b.copy() for _, b in layers]
            est.n_layers_, est.n_outputs_ = 3, layers[-1][0].shape[1]
        est.n_features_in_ = n_features
        return est
