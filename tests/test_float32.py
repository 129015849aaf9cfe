"""Float32 input is fitted and predicted in float32 on the CPU; float64 in float64."""

import tracemalloc
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.metrics import accuracy_score, r2_score
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

import skmoe.experts._linear
from skmoe import MixtureOfExpertsClassifier, MixtureOfExpertsRegressor
from skmoe._backend._products import column_sum, transposed_product
from skmoe._em import posteriors
from skmoe._math import vdot, weighted_sum
from skmoe.datasets import make_regime_classification, make_regime_regression
from skmoe.experts._linear import _normal_equations

pytestmark = [
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
]

DTYPES = [np.float32, np.float64]
EPS32 = np.finfo(np.float32).eps


@pytest.fixture(scope="module")
def regression():
    X, y = make_regime_regression(n_samples=3000, random_state=0)
    return X[:2000], y[:2000], X[2000:], y[2000:]


@pytest.fixture(scope="module")
def classification():
    X, y = make_regime_classification(n_samples=3000, random_state=0)
    return X[:2000], y[:2000], X[2000:], y[2000:]


def _row_sum_bound(n_experts, n_classes=1):
    """A bound on how far from 1 a float32 row of the gate's (or the
    mixture's) probabilities sums: each of the K exponentials (and of the C
    class probabilities of each expert) is off by a few ulps, NumPy's float32
    exp and log being accurate to about 2 ulps, and adding them up rounds
    once per term."""
    return (2 * n_experts + 2 * n_classes + 8) * EPS32


def _as(X, dtype, sparse):
    """X in ``dtype``, dense or as CSR (the gate then scales but does not centre)."""
    X = X.astype(dtype)
    return sp.csr_matrix(X) if sparse else X


def _outputs(model, X):
    """Every floating output of a fitted mixture on X."""
    outputs = {"gate_proba": model.gate_proba(X)}
    if isinstance(model, MixtureOfExpertsRegressor):
        outputs["predict"] = model.predict(X)
        outputs["mean"], outputs["std"] = model.predict(X, return_std=True)
    else:
        outputs["predict_proba"] = model.predict_proba(X)
    return outputs


# ---------------------------------------------------------------- output types


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["reg", "clf"])
def test_outputs_take_the_input_type(kind, dtype, sparse, regression, classification):
    X, y, X_test, _ = regression if kind == "reg" else classification
    estimator = MixtureOfExpertsRegressor if kind == "reg" else MixtureOfExpertsClassifier
    model = estimator(n_experts=3, random_state=0).fit(_as(X, dtype, sparse), y)
    X_test = _as(X_test, dtype, sparse)
    for name, output in _outputs(model, X_test).items():
        assert output.dtype == dtype, name
        assert np.all(np.isfinite(output)), name
    expert = model.predict_expert(X_test)
    assert expert.dtype.kind == "i"
    np.testing.assert_array_equal(expert, model.gate_proba(X_test).argmax(axis=1))
    if kind == "clf":
        assert set(model.predict(X_test)) <= set(model.classes_)


@pytest.mark.parametrize("dtype", DTYPES)
def test_fitted_parameters_follow_the_input_type(dtype, regression, classification):
    X, y, _, _ = regression
    reg = MixtureOfExpertsRegressor(n_experts=3, random_state=0).fit(X.astype(dtype), y)
    Xc, yc, _, _ = classification
    clf = MixtureOfExpertsClassifier(n_experts=3, random_state=0).fit(Xc.astype(dtype), yc)
    for model in (reg, clf):
        # as Ridge and LogisticRegression: coefficients in X's type
        assert model.gate_.coef_.dtype == dtype
        assert model.gate_.intercept_.dtype == dtype
        assert model._experts.coef_.dtype == dtype
        assert all(est.coef_.dtype == dtype for est in model.estimators_)
        # the scaler's statistics and the objective stay float64, as StandardScaler's
        assert model.gate_.scaler_.mean_.dtype == np.float64
        assert isinstance(model.lower_bound_, float)
        assert model.lower_bounds_.dtype == np.float64
    assert reg.noise_variance_.dtype == dtype


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_em_arrays_take_the_input_type(dtype, sparse, regression):
    # the standardised copy, the expert outputs, the log-likelihoods and the
    # responsibilities: the arrays of size n x d and n x K
    X, y, _, _ = regression
    X = _as(X, dtype, sparse)
    model = MixtureOfExpertsRegressor(n_experts=3, top_k=2, random_state=0).fit(X, y)
    X_valid, y_valid = model._validate_data(X, y, reset=False)
    assert y_valid.dtype == dtype
    Z = model.gate_.standardize(X_valid)
    assert Z.dtype == dtype and sp.issparse(Z) == sparse
    outputs = model._likelihood.outputs(model._experts, X_valid)
    log_lik = model._likelihood.log_lik(outputs, y_valid, model.noise_variance_)
    resp, gate_resp, row_log_lik = posteriors(model.gate_, Z, log_lik)
    for array in (outputs, log_lik, resp, gate_resp, row_log_lik):
        assert array.dtype == dtype


def test_outputs_take_the_prediction_input_type(regression):
    # a model fitted in one type predicts either; the output is the input's
    X, y, X_test, _ = regression
    for fit_dtype in DTYPES:
        model = MixtureOfExpertsRegressor(n_experts=3, random_state=0).fit(X.astype(fit_dtype), y)
        for dtype in DTYPES:
            for name, output in _outputs(model, X_test.astype(dtype)).items():
                assert output.dtype == dtype, (fit_dtype, dtype, name)


def test_integer_input_is_float64(regression):
    X, y, X_test, _ = regression
    X_int = np.round(X * 10).astype(np.int64)
    model = MixtureOfExpertsRegressor(n_experts=3, random_state=0).fit(X_int, y)
    assert model.gate_.coef_.dtype == np.float64
    for output in _outputs(model, np.round(X_test * 10).astype(np.int64)).values():
        assert output.dtype == np.float64


# ---------------------------------------------------------------- agreement


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
def test_float32_regression_agrees_with_float64(sparse, regression):
    X, y, X_test, y_test = regression
    fits = {
        dtype: MixtureOfExpertsRegressor(n_experts=4, random_state=0).fit(_as(X, dtype, sparse), y)
        for dtype in DTYPES
    }
    scores = {
        dtype: r2_score(y_test, model.predict(_as(X_test, dtype, sparse)))
        for dtype, model in fits.items()
    }
    # two whole fits in two precisions may part at one of EM's discrete
    # choices (test_float32_fit_follows_the_float64_fit compares them where
    # they cannot): each is held to the quality of the data on its own
    assert min(scores.values()) > 0.9
    gate = fits[np.float32].gate_proba(_as(X_test, np.float32, sparse))
    np.testing.assert_allclose(gate.sum(axis=1), 1.0, rtol=0, atol=_row_sum_bound(4))


def test_float32_fit_follows_the_float64_fit(separated_regimes, fixed_em):
    # With EM's discrete choices fixed (see the fixture) and no row near the
    # gate's boundary, the float32 fit is the float64 one plus float32 rounding
    # carried through each M-step's ridge solves, which amplify it by at most
    # their condition number; the map contracts towards its fixed point, so
    # the 30 iterations do not add up their errors.
    X, y, X_test, y_test = separated_regimes
    params = dict(n_experts=2, max_iter=30, random_state=0, **fixed_em)
    as32 = MixtureOfExpertsRegressor(**params).fit(X.astype(np.float32), y)
    as64 = MixtureOfExpertsRegressor(**params).fit(X, y)
    assert as64.score(X_test, y_test) > 0.99
    bound = 10 * np.linalg.cond(np.column_stack([X, np.ones(len(X))])) * EPS32
    np.testing.assert_allclose(
        as32.predict(X_test.astype(np.float32)),
        as64.predict(X_test),
        rtol=0,
        atol=bound * np.abs(y).max(),
    )
    np.testing.assert_allclose(as32.lower_bound_, as64.lower_bound_, rtol=bound)
    np.testing.assert_allclose(as32.noise_variance_, as64.noise_variance_, rtol=bound)


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
def test_float32_classification_agrees_with_float64(sparse, classification):
    X, y, X_test, y_test = classification
    accuracy, proba = {}, {}
    for dtype in DTYPES:
        model = MixtureOfExpertsClassifier(n_experts=3, random_state=0)
        model.fit(_as(X, dtype, sparse), y)
        accuracy[dtype] = accuracy_score(y_test, model.predict(_as(X_test, dtype, sparse)))
        proba[dtype] = model.predict_proba(_as(X_test, dtype, sparse))
    assert min(accuracy.values()) > 0.8  # each on its own, as for regression above
    bound = _row_sum_bound(3, n_classes=len(np.unique(y)))
    np.testing.assert_allclose(proba[np.float32].sum(axis=1), 1.0, rtol=0, atol=bound)


def test_float32_gradient_training(regression):
    X, y, X_test, y_test = regression
    scores = {}
    for dtype in DTYPES:
        model = MixtureOfExpertsRegressor(
            n_experts=4, solver="gradient", expert_hidden_units=4, max_iter=20, random_state=0
        ).fit(X.astype(dtype), y)
        # the networks are trained in X's type
        assert all(p.dtype == dtype for p in model._experts.params)
        assert model.gate_.coef_.dtype == dtype
        for output in _outputs(model, X_test.astype(dtype)).values():
            assert output.dtype == dtype
        scores[dtype] = model.score(X_test.astype(dtype), y_test)
    # 20 epochs of non-convex training part with rounding: each dtype on its own
    assert min(scores.values()) > 0.8


def test_float32_targets_at_the_edges_of_float32s_range(regression):
    X, y, _, _ = regression
    X = X.astype(np.float32)
    # squares of y under float32's normal numbers: the noise floor stays one
    model = MixtureOfExpertsRegressor(n_experts=2, random_state=0).fit(X, 1e-25 * y)
    assert np.all(model.noise_variance_ > 0)
    assert np.all(np.isfinite(model.predict(X, return_std=True)))
    # squares beyond float32's range, or values beyond it: refused, naming y
    for scale in (1e20, 1e300):
        with pytest.raises(ValueError, match=r"\by\b"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # the cast to float32's infinity
            MixtureOfExpertsRegressor(n_experts=2).fit(X, scale * y)


# ---------------------------------------------------------------- wrapped experts


class _RecordsInputType(RegressorMixin, BaseEstimator):
    """A regressor that predicts its weighted mean in float64, recording the
    type of the X it was given."""

    def fit(self, X, y, sample_weight=None):
        self.fit_dtype_ = X.dtype
        self.mean_ = float(np.average(y, weights=sample_weight))
        return self

    def predict(self, X):
        self.predict_dtype_ = X.dtype
        return np.full(X.shape[0], self.mean_, dtype=np.float64)


@pytest.mark.parametrize("dtype", DTYPES)
def test_wrapped_experts_see_the_input_and_their_outputs_are_cast(dtype, regression):
    X, y, X_test, _ = regression
    model = MixtureOfExpertsRegressor(_RecordsInputType(), n_experts=2, random_state=0)
    model.fit(X.astype(dtype), y)
    assert all(est.fit_dtype_ == dtype for est in model.estimators_)
    for output in _outputs(model, X_test.astype(dtype)).values():
        assert output.dtype == dtype
    assert all(est.predict_dtype_ == dtype for est in model.estimators_)
    assert model.noise_variance_.dtype == dtype


@pytest.mark.parametrize("kind", ["reg", "clf"])
def test_wrapped_trees_give_float32_outputs(kind, regression, classification):
    X, y, X_test, _ = regression if kind == "reg" else classification
    if kind == "reg":
        model = MixtureOfExpertsRegressor(DecisionTreeRegressor(max_depth=3), n_experts=3)
    else:
        model = MixtureOfExpertsClassifier(DecisionTreeClassifier(max_depth=3), n_experts=3)
    model.set_params(random_state=0).fit(X.astype(np.float32), y)
    for output in _outputs(model, X_test.astype(np.float32)).values():
        assert output.dtype == np.float32


# ---------------------------------------------------------------- online EM


@pytest.mark.parametrize("kind", ["reg", "clf"])
def test_partial_fit_keeps_float64_statistics(kind, regression, classification):
    X, y, X_test, _ = regression if kind == "reg" else classification
    X, X_test = X.astype(np.float32), X_test.astype(np.float32)
    if kind == "reg":
        model = MixtureOfExpertsRegressor(n_experts=3, random_state=0)
        for rows in np.array_split(np.arange(len(X)), 4):
            model.partial_fit(X[rows], y[rows])
        online = model._online.experts  # the experts' running statistics
        statistics = (online.gram, online.rhs, online.yy)
        assert model.noise_variance_.dtype == np.float32
    else:
        model = MixtureOfExpertsClassifier(n_experts=3, random_state=0)
        for rows in np.array_split(np.arange(len(X)), 4):
            model.partial_fit(X[rows], y[rows], classes=np.unique(y))
        online = model._online.experts
        statistics = (online.hessian, online.rhs)
    assert all(s.dtype == np.float64 for s in statistics)
    assert isinstance(online.weight, float | np.float64)
    assert model._experts.coef_.dtype == np.float32
    for output in _outputs(model, X_test).values():
        assert output.dtype == np.float32


# ---------------------------------------------------------------- long sums


def test_long_float32_sums_are_taken_in_float64():
    # Integers whose products and sums over one slice of rows (2**14 rows,
    # products <= 31**2) stay under 2**24 are exact in float32, whatever the
    # BLAS's order of summation; the sums over all rows (2.5e8; 6.4e7 for the
    # odd C) are not: a float32 accumulation loses their low bits, float64
    # keeps them. Each result is then the exact sum rounded once to its type.
    rng = np.random.default_rng(0)
    n = 1_000_000
    A = rng.integers(1, 32, size=(n, 3)).astype(np.float32)
    B = rng.integers(1, 32, size=(n, 2)).astype(np.float32)
    C = 4 * A + 1  # column_sum cuts no slices: odd terms, sums past 2**25
    w, v = A[:, 0], B[:, 0]
    exact = {
        "transposed_product": A.astype(np.float64).T @ B.astype(np.float64),
        "column_sum": C.astype(np.float64).sum(axis=0),
        "vdot": np.vdot(A[:, :2].astype(np.float64), B.astype(np.float64)),
        "weighted_sum": w.astype(np.float64) @ v.astype(np.float64),
    }
    assert exact["vdot"] < 2**53  # the float64 reference is exact too
    computed = {
        "transposed_product": transposed_product(A, B),
        "column_sum": column_sum(C),
        "vdot": vdot(A[:, :2].copy(), B),
        "weighted_sum": weighted_sum(w, v),
    }
    for name, value in computed.items():
        rounded = np.asarray(exact[name]).astype(np.asarray(value).dtype)
        np.testing.assert_array_equal(value, rounded, err_msg=name)
    assert computed["transposed_product"].dtype == np.float32
    assert computed["column_sum"].dtype == np.float32
    assert isinstance(computed["weighted_sum"], float)


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
def test_float32_normal_equations_are_float64_sums(sparse, monkeypatch):
    # summed slice by slice in float64: as from a float64 copy of the rows
    monkeypatch.setattr(skmoe.experts._linear, "HOST_SLICE_ROWS", 500)
    rng = np.random.default_rng(0)
    X = rng.normal(5.0, 1.0, size=(2100, 4)).astype(np.float32)
    y = rng.normal(size=2100).astype(np.float32)
    weights = rng.dirichlet(np.ones(3), size=2100).astype(np.float32)
    X_in = sp.csr_matrix(X) if sparse else X
    offset, gram, rhs = _normal_equations(X_in, y, weights)
    X64 = sp.csr_matrix(X.astype(np.float64)) if sparse else X.astype(np.float64)
    offset64, gram64, rhs64 = _normal_equations(
        X64, y.astype(np.float64), weights.astype(np.float64)
    )
    for value, expected in ((offset, offset64), (gram, gram64), (rhs, rhs64)):
        assert value.dtype == np.float64
        np.testing.assert_allclose(value, expected, rtol=1e-12)


# ---------------------------------------------------------------- memory


def _peak_mib(function):
    tracemalloc.start()
    try:
        function()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("kind", ["reg", "clf"])
def test_float32_needs_about_half_the_memory(kind, monkeypatch):
    # what the fit and the predictions allocate grows with X's type; the
    # linear experts' float64 slices are kept small here so that they do not
    # count (they are bounded whatever the number of rows)
    monkeypatch.setattr(skmoe.experts._linear, "HOST_SLICE_ROWS", 1000)
    if kind == "reg":
        X, y = make_regime_regression(n_samples=20000, n_features=40, random_state=0)
        estimator = MixtureOfExpertsRegressor
    else:
        X, y = make_regime_classification(n_samples=20000, n_features=40, random_state=0)
        estimator = MixtureOfExpertsClassifier
    peaks = {}
    for dtype in DTYPES:
        X_typed = X.astype(dtype)
        model = estimator(n_experts=4, max_iter=3, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = _peak_mib(lambda m=model, Xt=X_typed: m.fit(Xt, y))
        predict = _peak_mib(lambda m=model, Xt=X_typed: _outputs(m, Xt))
        peaks[dtype] = np.array([fit, predict])
    assert np.all(peaks[np.float32] < 0.6 * peaks[np.float64]), peaks
