"""device="cuda": the GPU fit against the CPU fit, outputs that follow the
input, pickling, and the error where CUDA is missing."""

import pickle

import numpy as np
import pytest
from _cupy_ridge import CupyRidge
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.tree import DecisionTreeClassifier

import skmoe._em
from skmoe import MixtureOfExpertsClassifier, MixtureOfExpertsRegressor
from skmoe._backend import cupy_available
from skmoe.gates import SoftmaxGate


@pytest.mark.skipif(cupy_available(), reason="CuPy and CUDA are present")
def test_cuda_without_cupy_says_how_to_install(regime_data):
    X, y, _, _ = regime_data
    with pytest.raises(ImportError, match=r'pip install "skmoe\[gpu\]"'):
        MixtureOfExpertsRegressor(device="cuda").fit(X, y)


def _assert_gpu_follows_cpu(params, X, y, X_test, dtype, rtol):
    """The GPU fit in ``dtype`` against the CPU's float64 fit."""
    cpu = MixtureOfExpertsRegressor(**params).fit(X, y)
    gpu = MixtureOfExpertsRegressor(device="cuda", **params).fit(X.astype(dtype), y.astype(dtype))
    expected = cpu.predict(X_test)
    np.testing.assert_allclose(
        gpu.predict(X_test.astype(dtype)), expected, rtol=rtol, atol=rtol * np.abs(expected).max()
    )
    np.testing.assert_allclose(gpu.lower_bound_, cpu.lower_bound_, rtol=rtol)
    return cpu, gpu


@pytest.mark.gpu
@pytest.mark.parametrize("top_k", [None, 2])
@pytest.mark.parametrize("n_experts", [4, (2, 2)])
def test_gpu_float64_fit_matches_cpu_fit(regime_data, n_experts, top_k, fixed_em):
    # the same float64 arithmetic in another order (rounding of 1e-16), with
    # EM's discrete choices fixed so that it cannot part at one of them; one
    # softmax gate or a tree of them
    X, y, X_test, _ = regime_data
    params = dict(n_experts=n_experts, top_k=top_k, random_state=0, max_iter=30, **fixed_em)
    _assert_gpu_follows_cpu(params, X, y, X_test, np.float64, rtol=1e-8)


@pytest.mark.gpu
@pytest.mark.parametrize("top_k", [None, 1])
def test_gpu_float32_fit_follows_cpu_float64_fit(separated_regimes, top_k, fixed_em):
    # as tests/test_float32.py's CPU comparison: float32 rounding through
    # M-step solves amplified by at most their condition number
    X, y, X_test, _ = separated_regimes
    params = dict(n_experts=2, top_k=top_k, random_state=0, max_iter=30, **fixed_em)
    bound = 10 * np.linalg.cond(np.column_stack([X, np.ones(len(X))])) * np.finfo(np.float32).eps
    _assert_gpu_follows_cpu(params, X, y, X_test, np.float32, rtol=bound)


@pytest.mark.gpu
def test_outputs_follow_the_input(regime_data):
    import cupy

    X, y, X_test, _ = regime_data
    model = MixtureOfExpertsRegressor(device="cuda", random_state=0).fit(X, y)
    assert isinstance(model.predict(X_test), np.ndarray)
    assert isinstance(model.gate_proba(X_test), np.ndarray)
    on_device = cupy.asarray(X_test)
    for output in (
        model.predict(on_device),
        model.gate_proba(on_device),
        *model.predict(on_device, return_std=True),
    ):
        assert isinstance(output, cupy.ndarray)
    np.testing.assert_allclose(model.predict(on_device).get(), model.predict(X_test))
    # CuPy input implies the GPU, and a CPU fit answers CuPy input with CuPy
    implied = MixtureOfExpertsRegressor(random_state=0).fit(cupy.asarray(X), cupy.asarray(y))
    np.testing.assert_allclose(implied.predict(X_test), model.predict(X_test), rtol=1e-10)
    cpu = MixtureOfExpertsRegressor(random_state=0).fit(X, y)
    assert isinstance(cpu.predict(on_device), cupy.ndarray)


@pytest.mark.gpu
def test_pickled_gpu_model_holds_numpy_and_predicts_the_same(regime_data):
    X, y, X_test, _ = regime_data
    model = MixtureOfExpertsRegressor(device="cuda", n_experts=4, top_k=2, random_state=0).fit(X, y)
    loaded = pickle.loads(pickle.dumps(model))
    assert isinstance(loaded.gate_.coef_, np.ndarray)
    assert isinstance(loaded._experts.coef_, np.ndarray)
    assert isinstance(loaded.noise_variance_, np.ndarray)
    np.testing.assert_allclose(loaded.predict(X_test), model.predict(X_test), rtol=1e-8)


def _regime_classes(X, y, n_classes):
    """Classes of a regression target: its quantiles, which the regimes set."""
    return np.searchsorted(np.quantile(y, np.linspace(0, 1, n_classes + 1)[1:-1]), y)


def _assert_gpu_classifier_follows_cpu(params, X, y, X_test, dtype, rtol):
    """The GPU classifier's fit in ``dtype`` against the CPU's float64 fit."""
    cpu = MixtureOfExpertsClassifier(**params).fit(X, y)
    gpu = MixtureOfExpertsClassifier(device="cuda", **params).fit(X.astype(dtype), y)
    np.testing.assert_allclose(
        gpu.predict_proba(X_test.astype(dtype)), cpu.predict_proba(X_test), rtol=rtol, atol=rtol
    )
    np.testing.assert_allclose(gpu.lower_bound_, cpu.lower_bound_, rtol=rtol)
    return cpu, gpu


@pytest.mark.gpu
@pytest.mark.parametrize("top_k", [None, 2])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_gpu_float64_classifier_matches_cpu_fit(regime_data, n_classes, top_k, fixed_em):
    # as the regressor's: the same float64 arithmetic in another order; a
    # sigmoid for two classes, a softmax for three
    X, y, X_test, _ = regime_data
    y = _regime_classes(X, y, n_classes)
    params = dict(n_experts=4, top_k=top_k, random_state=0, max_iter=30, **fixed_em)
    _assert_gpu_classifier_follows_cpu(params, X, y, X_test, np.float64, rtol=1e-8)


@pytest.mark.gpu
def test_gpu_float32_classifier_follows_cpu_float64_fit(separated_regimes, fixed_em):
    # each regime's linear function above its middle (3 on the right, 7 on
    # the left): float32 rounding through the experts' and gate's Newton
    # steps, amplified by at most the rows' condition number, as the
    # regressor's
    X, y, X_test, _ = separated_regimes
    right = X[:, 0] > 0
    labels = y - np.where(right, 3.0, -3.0) > np.where(right, 3.0, 7.0)
    params = dict(n_experts=2, random_state=0, max_iter=30, **fixed_em)
    bound = 10 * np.linalg.cond(np.column_stack([X, np.ones(len(X))])) * np.finfo(np.float32).eps
    _assert_gpu_classifier_follows_cpu(params, X, labels, X_test, np.float32, rtol=bound)


def _float64_fits_agree(params, X, y, X_test, n_classes):
    """The regressor's GPU and CPU float64 fits (``n_classes`` None), or the
    classifier's on ``n_classes`` classes of ``y``, checked to agree."""
    if n_classes is None:
        return _assert_gpu_follows_cpu(params, X, y, X_test, np.float64, rtol=1e-8)
    labels = _regime_classes(X, y, n_classes)
    return _assert_gpu_classifier_follows_cpu(params, X, labels, X_test, np.float64, rtol=1e-8)


@pytest.mark.gpu
@pytest.mark.parametrize("n_classes", [None, 3])
def test_gpu_penalties_chosen_from_the_evidence_match_cpu(regime_data, n_classes, fixed_em):
    # gate_alpha="auto" and expert_alpha="auto" (GCV for the ridge experts,
    # the evidence for the logistic ones): small systems solved on the host
    # from Gram matrices the device forms, so the same float64 arithmetic in
    # another order
    X, y, X_test, _ = regime_data
    params = dict(n_experts=4, top_k=2, random_state=0, max_iter=30, **fixed_em)
    params.update(gate_alpha="auto", expert_alpha="auto")
    cpu, gpu = _float64_fits_agree(params, X, y, X_test, n_classes)
    np.testing.assert_allclose(gpu.gate_.alpha_, cpu.gate_.alpha_, rtol=1e-8)
    np.testing.assert_allclose(gpu._experts.alpha_, cpu._experts.alpha_, rtol=1e-8)


@pytest.mark.gpu
@pytest.mark.parametrize("n_classes", [None, 3])
def test_gpu_early_stopping_matches_cpu(regime_data, n_classes, fixed_em):
    # the same rows held out (the split is drawn on the host), scored after
    # every iteration on the device, and the same iteration kept
    X, y, X_test, _ = regime_data
    params = dict(n_experts=4, random_state=0, max_iter=30, **fixed_em)
    params.update(early_stopping=True, n_iter_no_change=2)
    cpu, gpu = _float64_fits_agree(params, X, y, X_test, n_classes)
    assert len(gpu.validation_scores_) == len(cpu.validation_scores_)
    np.testing.assert_allclose(gpu.validation_scores_, cpu.validation_scores_, rtol=1e-8)


@pytest.mark.gpu
@pytest.mark.parametrize("wrapped", [False, True])
def test_gpu_grown_classifier_matches_cpu(regime_data, wrapped, fixed_em):
    # n_experts="auto": splits judged by BIC (the logistic experts) or by
    # the held-out log-likelihood (estimators given), on the device as on
    # the host, so the same sizes tried and kept
    X, y, X_test, _ = regime_data
    labels = _regime_classes(X, y, 3)
    estimator = LogisticRegression() if wrapped else None
    params = dict(estimator=estimator, random_state=0, max_iter=30, **fixed_em)
    cpu, gpu = _assert_gpu_classifier_follows_cpu(params, X, labels, X_test, np.float64, rtol=1e-8)
    for key, tried in cpu.growth_path_.items():
        np.testing.assert_allclose(gpu.growth_path_[key], tried, rtol=1e-8)
    assert gpu.n_experts_ == cpu.n_experts_


@pytest.mark.gpu
def test_gpu_classifier_outputs_follow_the_input(regime_data):
    import cupy

    X, y, X_test, _ = regime_data
    y = _regime_classes(X, y, 3)
    model = MixtureOfExpertsClassifier(device="cuda", n_experts=3, random_state=0).fit(X, y)
    on_device = cupy.asarray(X_test)
    assert isinstance(model.predict_proba(X_test), np.ndarray)
    for output in (model.predict(on_device), model.predict_proba(on_device)):
        assert isinstance(output, cupy.ndarray)
    np.testing.assert_array_equal(model.predict(on_device).get(), model.predict(X_test))
    # labels CuPy cannot hold come back as NumPy; CuPy labels are encoded too
    names = np.array(["high", "low", "middle"])  # sorted, as classes_ are
    named = MixtureOfExpertsClassifier(n_experts=3, random_state=0).fit(cupy.asarray(X), names[y])
    named_labels = named.predict(on_device)
    assert isinstance(named_labels, np.ndarray)
    np.testing.assert_array_equal(named_labels, names[model.predict(X_test)])
    coded = MixtureOfExpertsClassifier(n_experts=3, random_state=0).fit(
        cupy.asarray(X), cupy.asarray(y)
    )
    np.testing.assert_array_equal(coded.predict(X_test), model.predict(X_test))


@pytest.mark.gpu
def test_cupy_labels_are_encoded_as_host_labels(regime_data):
    import cupy

    X, y, X_test, _ = regime_data
    labels = np.array([-1.0, 2.0, 7.0])[_regime_classes(X, y, 3)]  # floats that are classes
    params = dict(device="cuda", n_experts=3, random_state=0, max_iter=5)
    host = MixtureOfExpertsClassifier(**params).fit(X, labels)
    device = MixtureOfExpertsClassifier(**params).fit(cupy.asarray(X), cupy.asarray(labels))
    assert isinstance(device.classes_, np.ndarray)
    np.testing.assert_array_equal(device.classes_, host.classes_)
    np.testing.assert_array_equal(device.predict(X_test), host.predict(X_test))


@pytest.mark.gpu
@pytest.mark.parametrize(
    "labels, error",
    [
        (lambda n: np.linspace(0.0, 1.0, n), "Unknown label type"),
        (lambda n: np.ones(n), "only one class"),
    ],
    ids=["continuous", "one-class"],
)
def test_bad_cupy_labels_get_the_host_labels_error(regime_data, labels, error):
    import cupy

    X, _, _, _ = regime_data
    y = labels(len(X))
    for data in [(X, y), (cupy.asarray(X), cupy.asarray(y))]:
        with pytest.raises(ValueError, match=error):
            MixtureOfExpertsClassifier(device="cuda", n_experts=2).fit(*data)


@pytest.mark.gpu
def test_pickled_gpu_classifier_holds_numpy_and_predicts_the_same(regime_data):
    X, y, X_test, _ = regime_data
    y = _regime_classes(X, y, 3)
    model = MixtureOfExpertsClassifier(device="cuda", n_experts=3, random_state=0).fit(X, y)
    loaded = pickle.loads(pickle.dumps(model))
    assert isinstance(loaded._experts.coef_, np.ndarray)
    assert all(isinstance(est.coef_, np.ndarray) for est in loaded.estimators_)
    np.testing.assert_allclose(loaded.predict_proba(X_test), model.predict_proba(X_test), rtol=1e-8)


class _RowCounter(Ridge):
    """Ridge that records how many rows each fit was given."""

    fitted_rows = []

    def fit(self, X, y, sample_weight=None):
        assert isinstance(X, np.ndarray)
        self.fitted_rows.append(len(X))
        return super().fit(X, y, sample_weight)


@pytest.mark.gpu
@pytest.mark.parametrize("top_k", [None, 2])
@pytest.mark.parametrize("device_native", [True, False], ids=["cupy-experts", "host-experts"])
def test_gpu_fit_of_estimators_matches_cpu_fit(regime_data, device_native, top_k, fixed_em):
    # weighted ridge regressions fitted on the device by an estimator that
    # takes CuPy arrays, against its NumPy twin on the CPU; or by
    # scikit-learn's Ridge on the host's copies of their rows, against Ridge
    # on the CPU: float64 rounding, as the built-in experts' parity
    X, y, X_test, _ = regime_data
    params = dict(n_experts=4, top_k=top_k, random_state=0, max_iter=30, **fixed_em)
    experts = (CupyRidge(device="cpu"), CupyRidge()) if device_native else (Ridge(), Ridge())
    cpu = MixtureOfExpertsRegressor(experts[0], **params).fit(X, y)
    gpu = MixtureOfExpertsRegressor(experts[1], device="cuda", **params).fit(X, y)
    expected = cpu.predict(X_test)
    np.testing.assert_allclose(
        gpu.predict(X_test), expected, rtol=1e-8, atol=1e-8 * np.abs(expected).max()
    )
    np.testing.assert_allclose(gpu.lower_bound_, cpu.lower_bound_, rtol=1e-8)


@pytest.mark.gpu
def test_host_experts_on_the_gpu_get_only_their_routed_rows(regime_data, fixed_em):
    # under top-1 each row is routed to one expert: after the first E-step
    # (the k-means start's responsibilities may be soft) the experts' fits
    # of one M-step are given n rows in all
    X, y, _, _ = regime_data
    _RowCounter.fitted_rows = []
    model = MixtureOfExpertsRegressor(
        _RowCounter(), n_experts=4, top_k=1, random_state=0, max_iter=3, device="cuda", **fixed_em
    ).fit(X, y)
    per_step = np.reshape(_RowCounter.fitted_rows, (model.n_iter_, 4)).sum(axis=1)
    np.testing.assert_array_equal(per_step[1:], len(X))


@pytest.mark.gpu
def test_gpu_classifier_of_estimators_gives_probabilities(regime_data):
    import cupy

    X, y, X_test, _ = regime_data
    y = _regime_classes(X, y, 3)
    model = MixtureOfExpertsClassifier(
        DecisionTreeClassifier(max_depth=3), n_experts=3, random_state=0, device="cuda"
    ).fit(X, y)
    proba = model.predict_proba(cupy.asarray(X_test))
    assert isinstance(proba, cupy.ndarray)
    np.testing.assert_allclose(proba.sum(axis=1).get(), 1.0, rtol=1e-12)
    assert model.score(X, y) > 1 / 3


@pytest.mark.gpu
@pytest.mark.parametrize(
    "model",
    [
        MixtureOfExpertsClassifier(device="cuda", solver="gradient"),
        MixtureOfExpertsRegressor(device="cuda", solver="gradient"),
    ],
)
def test_what_the_gpu_does_not_run_yet_is_refused(regime_data, model):
    X, y, _, _ = regime_data
    with pytest.raises(ValueError, match="device='cuda' supports solver='em'"):
        model.fit(X[:100], y[:100] > 0)


@pytest.mark.gpu
def test_gpu_fit_with_sampled_kmeans_matches_cpu_fit(regime_data, monkeypatch, fixed_em):
    # k-means on a sample, then every row to its nearest centre on the device
    monkeypatch.setattr(skmoe._em, "KMEANS_ROWS", 500)
    X, y, X_test, _ = regime_data
    params = dict(n_experts=4, top_k=2, random_state=0, max_iter=30, **fixed_em)
    cpu = MixtureOfExpertsRegressor(**params).fit(X, y)
    gpu = MixtureOfExpertsRegressor(device="cuda", **params).fit(X, y)
    expected = cpu.predict(X_test)
    np.testing.assert_allclose(gpu.predict(X_test), expected, atol=1e-8 * np.abs(expected).max())


@pytest.mark.gpu
@pytest.mark.parametrize("top_k", [None, 1, 3])
def test_fused_predict_matches_the_gate_and_experts(regime_data, top_k):
    import cupy

    X, y, X_test, _ = regime_data
    X, y, X_test = (cupy.asarray(a, dtype=cupy.float32) for a in (X, y, X_test))
    model = MixtureOfExpertsRegressor(n_experts=5, top_k=top_k, random_state=0).fit(X, y)
    gate = model.gate_proba(X_test)
    expected = (gate * model._experts.predict(X_test)).sum(axis=1)
    np.testing.assert_allclose(
        model.predict(X_test).get(),
        expected.get(),
        rtol=1e-4,
        atol=1e-4 * float(abs(expected).max()),
    )


@pytest.mark.gpu
@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-6), (np.float32, 1e-3)])
def test_gpu_gate_fit_by_the_fused_loss_matches_cpu(dtype, rtol):
    # a gate of more than 256 coefficients is fitted by L-BFGS, on the GPU
    # through the fused loss-and-gradient kernel
    import cupy

    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 40)).astype(dtype)
    resp = rng.dirichlet(np.ones(8), size=3000) * (1 + 3 * (X[:, :8] > 0))
    resp = (resp / resp.sum(axis=1, keepdims=True)).astype(dtype)
    gates = []
    for xp in (np, cupy):
        gate = SoftmaxGate(alpha=0.1, max_iter=1000, tol=1e-9)
        gate.init_scaler(xp.asarray(X), xp.ones(len(X), dtype=dtype))
        gates.append(gate.fit_standardized(gate.standardize(xp.asarray(X)), xp.asarray(resp)))
    cpu, gpu = gates
    assert cpu.coef_.size > 256
    np.testing.assert_allclose(gpu.coef_.get(), cpu.coef_, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(gpu.intercept_.get(), cpu.intercept_, rtol=rtol, atol=rtol)


@pytest.mark.gpu
def test_gate_newton_step_by_the_tiled_product_matches_cpu():
    # the same conjugate gradients, the Hessian's products by the tiled
    # kernel on the GPU: float64 rounding apart, the same step
    import cupy

    from skmoe._design import Design
    from skmoe._optim import _newton_cg_step

    rng = np.random.default_rng(0)
    n, d, K = 5000, 12, 6
    Z, proba = rng.normal(size=(n, d)), rng.dirichlet(np.ones(K), size=n)
    weight, grad = rng.uniform(size=n), rng.normal(size=(d + 1, K))
    # a penalty of 0.1 per row: the shift all logits share has curvature too
    penalty, blocks = np.full((d + 1, 1), 0.1 * n), np.stack([np.eye(d + 1)] * K)
    steps = [
        _newton_cg_step(
            Design(xp.asarray(Z)),
            *map(xp.asarray, (proba, weight, penalty)),
            n,
            xp.asarray(grad),
            blocks,  # on the host, where the conjugate gradients apply them
        )
        for xp in (np, cupy)
    ]
    np.testing.assert_allclose(steps[1].get(), steps[0], rtol=1e-8, atol=1e-12)


@pytest.mark.gpu
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_fused_predict_refuses_non_finite_rows(regime_data, bad):
    import cupy

    X, y, X_test, _ = regime_data
    model = MixtureOfExpertsRegressor(n_experts=3, device="cuda", random_state=0).fit(X, y)
    X_test = X_test.copy()
    X_test[7, 1] = bad
    with pytest.raises(ValueError, match="NaN or infinity"):
        model.predict(cupy.asarray(X_test))


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gpu_keeps_the_rows_the_cpu_keeps(dtype):
    # integer hashes and elementwise float64 keys: the same rows, weights and
    # order on either device, so both fits start from the same arrays
    import cupy

    from skmoe._rows import distinct_rows

    rng = np.random.RandomState(0)
    X = rng.randint(0, 3, size=(5000, 4)).astype(dtype)  # many copies
    y = rng.randint(0, 2, size=5000).astype(dtype)
    weight = rng.randint(0, 3, size=5000).astype(dtype)
    cpu = distinct_rows(X, y, weight)
    gpu = distinct_rows(cupy.asarray(X), cupy.asarray(y), cupy.asarray(weight))
    for name in cpu._fields:
        np.testing.assert_array_equal(cupy.asnumpy(getattr(gpu, name)), getattr(cpu, name))
