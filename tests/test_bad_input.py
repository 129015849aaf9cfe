"""Bad input, tried systematically.

First property tests (Hypothesis) over shapes, dtypes, sample weights and
label sets: the outputs hold no NaN, gate rows sum to 1, and predictions are
row-wise (they follow a permutation of the rows, and do not depend on how many
rows are predicted at once). Then one test per kind of awkward input: each
asserts a correct fit, or an error whose message names the problem.
"""

import re
import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.base import is_classifier
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from skmoe import MixtureOfExpertsClassifier, MixtureOfExpertsRegressor

# Degenerate data makes EM warn (no convergence, restarted experts, an
# ill-conditioned solve); what these tests check is the outputs.
pytestmark = [
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    pytest.mark.filterwarnings("ignore::scipy.linalg.LinAlgWarning"),
]

# ---------------------------------------------------------------- properties

# derandomized: the same examples on every machine and run
PROPERTY_SETTINGS = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
EXPERT_KINDS = ["builtin", "tree", "top_k"]


def _elements(dtype):
    if dtype == np.int64:
        return st.integers(-1000, 1000)
    width = 32 if dtype == np.float32 else 64
    return st.floats(-1e4, 1e4, width=width)


@st.composite
def _features(draw):
    n_samples = draw(st.integers(8, 60))
    n_features = draw(st.integers(1, 5))
    dtype = draw(st.sampled_from([np.float32, np.float64, np.int64]))
    return draw(arrays(dtype, (n_samples, n_features), elements=_elements(dtype)))


@st.composite
def _sample_weights(draw, n_samples):
    """None, or non-negative weights, some of them zero; the first three rows
    (as many as there can be experts) carry weight."""
    weight = draw(
        st.none() | arrays(np.float64, n_samples, elements=st.just(0.0) | st.floats(0.1, 10.0))
    )
    if weight is not None:
        weight[:3] = np.maximum(weight[:3], 1.0)
    return weight


@st.composite
def _regression_problem(draw):
    X = draw(_features())
    y = draw(arrays(np.float64, len(X), elements=st.floats(-1e4, 1e4)))
    return X, y, draw(_sample_weights(len(X)))


_LABEL_SETS = st.lists(
    st.integers(-(10**9), 10**9), min_size=2, max_size=4, unique=True
) | st.lists(st.text(max_size=5), min_size=2, max_size=4, unique=True)


@st.composite
def _classification_problem(draw):
    X = draw(_features())
    labels = draw(_LABEL_SETS)
    index = draw(arrays(np.int64, len(X), elements=st.integers(0, len(labels) - 1)))
    index[:2] = [0, 1]  # at least two classes
    dtype = object if isinstance(labels[0], str) else np.int64
    return X, np.array(labels, dtype=dtype)[index], draw(_sample_weights(len(X)))


def _model(kind, n_experts, classifier):
    params = dict(n_experts=n_experts, max_iter=10, random_state=0)
    if kind == "top_k":
        params["top_k"] = 1
    if classifier:
        estimator = DecisionTreeClassifier(max_depth=2) if kind == "tree" else None
        return MixtureOfExpertsClassifier(estimator, **params)
    estimator = DecisionTreeRegressor(max_depth=2) if kind == "tree" else None
    return MixtureOfExpertsRegressor(estimator, **params)


def _in_blocks(method, X, block):
    return np.concatenate([method(X[i : i + block]) for i in range(0, len(X), block)])


def _assert_close(actual, desired, **tolerances):
    """``assert_allclose`` with ``tolerances`` for float64 outputs. Float32
    outputs (those of float32 X) hold about 7 digits, and a product over
    another number of rows rounds differently: they get float32's own."""
    if np.asarray(actual).dtype == np.float32:
        scale = max(1.0, float(np.max(np.abs(desired))))
        tolerances = dict(rtol=1e-5, atol=1e-5 * scale)
    np.testing.assert_allclose(actual, desired, **tolerances)


def _assert_same_labels(actual, desired, proba):
    """Equal predicted labels, on the rows whose two most probable classes do
    not tie to the outputs' precision (where rounding picks either): 1e-5 in
    float32, 1e-12 in float64, each far above a few ulps of a probability."""
    margin = 1e-5 if proba.dtype == np.float32 else 1e-12
    top_two = np.sort(proba, axis=1)[:, -2:]
    decided = top_two[:, 1] - top_two[:, 0] > margin
    np.testing.assert_array_equal(actual[decided], desired[decided])


def _check_gate(model, X):
    gate = model.gate_proba(X)
    assert gate.shape == (len(X), len(model.estimators_))
    assert np.all(np.isfinite(gate)) and np.all(gate >= 0)
    _assert_close(gate.sum(axis=1), 1.0, rtol=1e-9)
    return gate


@PROPERTY_SETTINGS
@given(
    problem=_regression_problem(),
    kind=st.sampled_from(EXPERT_KINDS),
    n_experts=st.integers(1, 3),
    data=st.data(),
)
def test_regressor_outputs_are_finite_and_row_wise(problem, kind, n_experts, data):
    X, y, sample_weight = problem
    model = _model(kind, n_experts, classifier=False).fit(X, y, sample_weight=sample_weight)
    pred = model.predict(X)
    mean, std = model.predict(X, return_std=True)
    gate = _check_gate(model, X)
    assert np.all(np.isfinite(pred)) and np.all(np.isfinite(std)) and np.all(std >= 0)
    np.testing.assert_array_equal(mean, pred)

    perm = np.array(data.draw(st.permutations(range(len(X))), label="permutation"))
    _assert_close(model.predict(X[perm]), pred[perm], rtol=1e-9, atol=1e-9)
    _assert_close(model.gate_proba(X[perm]), gate[perm], rtol=1e-9, atol=1e-12)

    block = data.draw(st.integers(1, len(X)), label="block")
    _assert_close(_in_blocks(model.predict, X, block), pred, rtol=1e-9, atol=1e-9)
    std_blocks = _in_blocks(lambda rows: model.predict(rows, return_std=True)[1], X, block)
    _assert_close(std_blocks, std, rtol=1e-9, atol=1e-9)
    _assert_close(_in_blocks(model.gate_proba, X, block), gate, atol=1e-12)


@PROPERTY_SETTINGS
@given(
    problem=_classification_problem(),
    kind=st.sampled_from(EXPERT_KINDS),
    n_experts=st.integers(1, 3),
    data=st.data(),
)
def test_classifier_outputs_are_finite_and_row_wise(problem, kind, n_experts, data):
    X, y, sample_weight = problem
    model = _model(kind, n_experts, classifier=True).fit(X, y, sample_weight=sample_weight)
    assert set(model.classes_) == set(y)
    proba = model.predict_proba(X)
    pred = model.predict(X)
    gate = _check_gate(model, X)
    assert proba.shape == (len(X), len(model.classes_))
    assert np.all(np.isfinite(proba)) and np.all(proba >= 0)
    _assert_close(proba.sum(axis=1), 1.0, rtol=1e-9)
    assert set(pred) <= set(model.classes_)

    perm = np.array(data.draw(st.permutations(range(len(X))), label="permutation"))
    _assert_close(model.predict_proba(X[perm]), proba[perm], atol=1e-12)
    _assert_same_labels(model.predict(X[perm]), pred[perm], proba[perm])
    _assert_close(model.gate_proba(X[perm]), gate[perm], atol=1e-12)

    block = data.draw(st.integers(1, len(X)), label="block")
    _assert_close(_in_blocks(model.predict_proba, X, block), proba, atol=1e-12)
    _assert_same_labels(_in_blocks(model.predict, X, block), pred, proba)
    _assert_close(_in_blocks(model.gate_proba, X, block), gate, atol=1e-12)


# ---------------------------------------------------------------- explicit cases


@pytest.fixture
def data():
    """Two regimes in 3 features: a regression target and a class label."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(60, 3))
    y = X @ np.array([1.0, -1.0, 0.5]) + np.where(X[:, 0] > 0, 2.0, -2.0)
    labels = (X[:, 0] + X[:, 1] > 0).astype(int)
    return X, y, labels


def _target(data, kind):
    X, y, labels = data
    return X, (y if kind == "reg" else labels)


def _make(kind, estimator=None, **params):
    params.setdefault("n_experts", 2)
    params.setdefault("random_state", 0)
    if kind == "reg":
        return MixtureOfExpertsRegressor(estimator, **params)
    return MixtureOfExpertsClassifier(estimator, **params)


def _assert_sound(model, X, y, reference_score, slack=0.05):
    """Finite outputs, and a training score within ``slack`` of the reference."""
    if is_classifier(model):
        outputs = [model.predict_proba(X)]
    else:
        outputs = list(model.predict(X, return_std=True))
    for output in [*outputs, model.gate_proba(X)]:
        assert np.all(np.isfinite(output))
    score = model.score(X, y)
    assert score >= reference_score - slack, f"score {score:.3f}, reference {reference_score:.3f}"


KINDS = ["reg", "clf"]


def _equivalent_alpha(model, solver):
    # a linear expert's coefficients shrink by 1e12 with its features, so its
    # penalty scaled by 1e-24 poses the unscaled problem; the gate and the
    # network experts (solver="gradient") standardise their inputs
    return model.expert_alpha * (1e-24 if solver == "em" else 1.0)


def test_features_at_1e12_scale_fit_as_the_unscaled_ones(data, fixed_em):
    # the two fits differ by the rounding of X * 1e12 carried through EM's
    # ridge solves, amplified by at most their conditioning
    X, y = _target(data, "reg")
    scaled = _make("reg", **fixed_em).fit(X * 1e12, y)
    unscaled = _make("reg", expert_alpha=_equivalent_alpha(scaled, "em"), **fixed_em).fit(X, y)
    bound = 10 * np.linalg.cond(np.column_stack([X, np.ones(len(X))])) * np.finfo(float).eps
    np.testing.assert_allclose(
        scaled.predict(X * 1e12), unscaled.predict(X), rtol=0, atol=bound * np.abs(y).max()
    )


@pytest.mark.parametrize(
    ("kind", "solver"), [("clf", "em"), ("reg", "gradient"), ("clf", "gradient")]
)
def test_features_at_1e12_scale(data, kind, solver):
    # As above, but closeness has no bound here: an expert of separable rows
    # under a penalty of 1e-24 grows its coefficients until L-BFGS stops, and
    # Adam's path amplifies rounding without one. The fit must be sound.
    X, y = _target(data, kind)
    params = dict(solver=solver, max_iter=30 if solver == "gradient" else 100)
    scaled = _make(kind, **params).fit(X * 1e12, y)
    unscaled = _make(kind, expert_alpha=_equivalent_alpha(scaled, solver), **params).fit(X, y)
    _assert_sound(scaled, X * 1e12, y, unscaled.score(X, y))


@pytest.mark.parametrize("value", [3.0, 1.7e18 + 2048, 3.3e25])
@pytest.mark.parametrize("solver", ["em", "gradient"])
@pytest.mark.parametrize("kind", KINDS)
def test_constant_column(data, kind, solver, value):
    # a constant column (a unit, a date in nanoseconds) carries no information:
    # it must not move the fit, whatever its value
    X, y = _target(data, kind)
    params = dict(solver=solver, max_iter=30 if solver == "gradient" else 100)
    reference = _make(kind, **params).fit(X, y).score(X, y)
    X_const = np.column_stack([X, np.full(len(X), value)])
    _assert_sound(_make(kind, **params).fit(X_const, y), X_const, y, reference)


@pytest.mark.parametrize("kind", KINDS)
def test_only_constant_columns(data, kind):
    # nothing to learn: the mixture predicts the (weighted) mean or the class shares
    X, y = _target(data, kind)
    X_const = np.full((len(X), 2), 3.0)
    model = _make(kind, n_experts=3).fit(X_const, y)
    if kind == "reg":
        np.testing.assert_allclose(model.predict(X_const), y.mean(), rtol=1e-3)
        assert np.all(np.isfinite(model.predict(X_const, return_std=True)[1]))
    else:
        proba = model.predict_proba(X_const)
        np.testing.assert_allclose(proba, np.tile(np.bincount(y) / len(y), (len(y), 1)), atol=1e-4)


@pytest.mark.parametrize("estimator", [None, "tree"])
@pytest.mark.parametrize("kind", KINDS)
def test_duplicated_columns(data, kind, estimator):
    X, y = _target(data, kind)
    if estimator == "tree":
        estimator = DecisionTreeRegressor(max_depth=3) if kind == "reg" else None
        estimator = estimator or DecisionTreeClassifier(max_depth=3)
    reference = _make(kind, estimator).fit(X, y).score(X, y)
    X_dup = np.column_stack([X, X, X[:, :1]])
    _assert_sound(_make(kind, estimator).fit(X_dup, y), X_dup, y, reference)


@pytest.mark.parametrize("kind", KINDS)
def test_duplicated_rows(data, kind):
    # every row twice is every row of weight 2: the fit sees the same distinct
    # rows and weights either way (so, as in scikit-learn's check of sample
    # weights, the same outputs; exactly, where BLAS gives equal results for
    # equal inputs)
    X, y = _target(data, kind)
    weighted = _make(kind).fit(X, y, sample_weight=np.full(len(X), 2.0))
    repeated = _make(kind).fit(np.vstack([X, X]), np.concatenate([y, y]))
    method = "predict" if kind == "reg" else "predict_proba"
    np.testing.assert_allclose(
        getattr(repeated, method)(X), getattr(weighted, method)(X), rtol=1e-7
    )


@pytest.mark.parametrize("random_state", [0, 1, 2])
@pytest.mark.parametrize(
    "estimator", [DecisionTreeRegressor(max_depth=2), LinearRegression()], ids=["tree", "linear"]
)
def test_fewer_distinct_rows_than_experts(estimator, random_state):
    # one row, then 14 copies of another: k-means leaves one of the 3 experts
    # empty, and its restart must not take the only row of another expert
    # (a wrapped expert cannot be fitted on no rows)
    X = np.vstack([np.zeros((1, 1)), np.ones((14, 1))])
    y = np.zeros(15)
    model = MixtureOfExpertsRegressor(estimator, n_experts=3, random_state=random_state)
    model.fit(X, y)
    np.testing.assert_allclose(model.predict(X), 0.0, atol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_all_zero_sample_weight(data, kind):
    X, y = _target(data, kind)
    with pytest.raises(ValueError, match=r"(?i)sample.weights? must .*(non-zero|not be all zero)"):
        _make(kind).fit(X, y, sample_weight=np.zeros(len(X)))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("where", [slice(None), slice(0, 1)], ids=["all", "one"])
def test_negative_sample_weight(data, kind, where):
    X, y = _target(data, kind)
    sample_weight = np.ones(len(X))
    sample_weight[where] = -1.0
    with pytest.raises(ValueError, match="sample_weight must be non-negative"):
        _make(kind).fit(X, y, sample_weight=sample_weight)


def test_non_finite_sample_weight(data):
    X, y, _ = data
    sample_weight = np.ones(len(X))
    sample_weight[3] = np.nan
    with pytest.raises(ValueError, match="sample_weight contains NaN"):
        MixtureOfExpertsRegressor().fit(X, y, sample_weight=sample_weight)


@pytest.mark.parametrize("kind", KINDS)
def test_fewer_rows_than_experts(data, kind):
    X, _, _ = data
    y = np.array([0.5, 1.0, -1.0, 2.0]) if kind == "reg" else np.array([0, 1, 0, 1])
    with pytest.raises(ValueError, match="n_experts=5 must be <= n_samples=4"):
        _make(kind, n_experts=5).fit(X[:4], y)
    estimators = [Ridge()] * 3 if kind == "reg" else [LogisticRegression()] * 3
    with pytest.raises(ValueError, match="n_experts=3 must be <= n_samples=2"):
        _make(kind, estimators, n_experts="auto").fit(X[:2], y[:2])


def test_fewer_weighted_rows_than_experts(data):
    # 20 rows, one of them with weight: two tree experts cannot both have rows.
    # Either the fit copes (finite predictions) or it says that sample_weight
    # leaves too few rows for n_experts.
    X, y, _ = data
    sample_weight = np.zeros(len(X))
    sample_weight[0] = 1.0
    model = MixtureOfExpertsRegressor(DecisionTreeRegressor(max_depth=2), n_experts=2)
    try:
        model.set_params(random_state=0).fit(X, y, sample_weight=sample_weight)
    except ValueError as error:
        assert "sample_weight" in str(error) and "n_experts" in str(error), str(error)
    else:
        assert np.all(np.isfinite(model.predict(X)))


@pytest.mark.parametrize("estimator", [None, DecisionTreeClassifier()], ids=["builtin", "tree"])
@pytest.mark.parametrize("label", [0, "spam"])
def test_single_class(data, estimator, label):
    X, _, _ = data
    with pytest.raises(ValueError, match="at least 2 classes"):
        MixtureOfExpertsClassifier(estimator).fit(X, np.full(len(X), label))


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"top_k": 1, "n_experts": 3},
        {"estimator": DecisionTreeClassifier()},
        {"solver": "gradient", "max_iter": 20},
    ],
    ids=["builtin", "top_k", "tree", "gradient"],
)
@pytest.mark.filterwarnings("ignore:The number of unique classes:UserWarning")  # from the trees
def test_fifty_classes_of_three_rows(params):
    rng = np.random.RandomState(0)
    labels = np.array([f"class {i:02d}" for i in range(50)])
    y = np.repeat(labels, 3)
    centres = rng.normal(scale=3.0, size=(50, 4))
    X = np.repeat(centres, 3, axis=0) + rng.normal(scale=0.3, size=(150, 4))
    params = {"n_experts": 2, "random_state": 0, **params}
    model = MixtureOfExpertsClassifier(**params).fit(X, y)
    proba = model.predict_proba(X)
    assert proba.shape == (150, 50)
    np.testing.assert_array_equal(model.classes_, labels)
    assert np.all(np.isfinite(proba))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-9)
    assert model.score(X, y) > 0.5  # chance is 0.02; the classes are well apart


def test_object_dtype_features(data):
    X, y, _ = data
    X_obj = X.astype(object)
    expected = MixtureOfExpertsRegressor(random_state=0).fit(X, y).predict(X)
    model = MixtureOfExpertsRegressor(random_state=0).fit(X_obj, y)
    np.testing.assert_allclose(model.predict(X_obj), expected)
    X_obj[0, 0] = "a"
    with pytest.raises(ValueError, match="could not convert string to float: 'a'"):
        MixtureOfExpertsRegressor().fit(X_obj, y)
    X_obj[0, 0] = None
    with pytest.raises(ValueError, match="Input X contains NaN"):
        MixtureOfExpertsRegressor().fit(X_obj, y)


@pytest.mark.parametrize("estimator", [None, "tree"])
@pytest.mark.parametrize("kind", KINDS)
def test_dataframe_with_feature_names(data, kind, estimator):
    X, y = _target(data, kind)
    if estimator == "tree":
        estimator = DecisionTreeRegressor(max_depth=3) if kind == "reg" else None
        estimator = estimator or DecisionTreeClassifier(max_depth=3)
    frame = pd.DataFrame(X, columns=["age", "height", "weight"])
    target = pd.Series(y, index=np.arange(100, 100 + len(y)))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no feature-name warning inside
        model = _make(kind, estimator).fit(frame, target)
        from_frame = model.predict(frame)
        gate = model.gate_proba(frame)
    np.testing.assert_array_equal(model.feature_names_in_, ["age", "height", "weight"])
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        from_array = model.predict(X)
    np.testing.assert_allclose(from_array, from_frame)
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        np.testing.assert_allclose(model.gate_proba(X), gate)
    with pytest.raises(ValueError, match="feature names should match"):
        model.predict(frame[["height", "age", "weight"]])
    with pytest.raises(ValueError, match="feature names should match"):
        model.predict(frame.rename(columns={"age": "years"}))
    fitted_on_array = _make(kind, estimator).fit(X, y)
    with pytest.warns(UserWarning, match="X has feature names, but"):
        fitted_on_array.predict(frame)


@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize(
    "kind, estimator",
    [
        ("reg", None),
        ("reg", DecisionTreeRegressor(max_depth=3)),
        ("reg", Ridge()),
        ("clf", None),
        ("clf", DecisionTreeClassifier(max_depth=3)),
        ("clf", LogisticRegression(solver="liblinear")),
    ],
    ids=["reg-builtin", "reg-tree", "reg-ridge", "clf-builtin", "clf-tree", "clf-logistic"],
)
def test_sparse_input(fmt, kind, estimator):
    # the built-in experts and these wrapped ones take sparse input. The gate
    # scales sparse columns without centring them, so EM starts elsewhere than
    # on dense input and may end elsewhere: the fit is held to a single expert's
    # score; and a sparse fit predicts the same on sparse and dense rows
    rng = np.random.RandomState(0)
    X = sp.random(80, 5, density=0.4, format=fmt, random_state=rng)
    dense = X.toarray()
    y = dense @ np.array([1.0, -2.0, 0.5, 0.0, 1.0])
    if kind == "clf":
        y = (y > np.median(y)).astype(int)
    reference = _make(kind, estimator, n_experts=1).fit(dense, y).score(dense, y)
    model = _make(kind, estimator).fit(X, y)
    _assert_sound(model, X, y, reference)
    if kind == "reg":
        np.testing.assert_allclose(model.predict(X), model.predict(dense), rtol=1e-10)
    else:
        np.testing.assert_allclose(model.predict_proba(X), model.predict_proba(dense), atol=1e-12)


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_sparse_input_to_dense_only_experts(data, fmt):
    X, y, _ = data
    X = sp.csr_matrix(X) if fmt == "csr" else sp.csc_matrix(X)
    model = MixtureOfExpertsRegressor(HistGradientBoostingRegressor(max_iter=5), random_state=0)
    with pytest.raises(TypeError, match="(?i)sparse data was passed.*dense data is required"):
        model.fit(X, y)


@pytest.fixture
def memmapped(tmp_path, data):
    """The data as read-only memory maps, through joblib and through np.memmap."""
    X, y, labels = data
    sample_weight = np.random.RandomState(1).uniform(0.5, 2.0, size=len(X))
    joblib.dump((X, y, labels, sample_weight), tmp_path / "data.joblib")
    X_map, y_map, labels_map, w_map = joblib.load(tmp_path / "data.joblib", mmap_mode="r")
    path = tmp_path / "X.dat"
    writer = np.memmap(path, dtype=np.float64, mode="w+", shape=X.shape)
    writer[:] = X
    writer.flush()
    del writer
    X_np = np.memmap(path, dtype=np.float64, mode="r", shape=X.shape)
    assert not X_map.flags.writeable and not X_np.flags.writeable
    return dict(joblib=X_map, memmap=X_np), y_map, labels_map, w_map, sample_weight


@pytest.mark.parametrize("source", ["joblib", "memmap"])
@pytest.mark.parametrize(
    "kind, params",
    [
        ("reg", {}),
        ("reg", {"estimator": DecisionTreeRegressor(max_depth=3)}),
        ("reg", {"solver": "gradient", "max_iter": 10}),
        ("clf", {}),
        ("clf", {"estimator": DecisionTreeClassifier(max_depth=3)}),
    ],
    ids=["reg-builtin", "reg-tree", "reg-gradient", "clf-builtin", "clf-tree"],
)
def test_read_only_memory_map(data, memmapped, source, kind, params):
    X, y, labels = data
    maps, y_map, labels_map, w_map, sample_weight = memmapped
    X_map = maps[source]
    target, target_map = (y, y_map) if kind == "reg" else (labels, labels_map)
    expected = _make(kind, **params).fit(X, target, sample_weight=sample_weight)
    model = _make(kind, **params).fit(X_map, target_map, sample_weight=w_map)
    method = "predict" if kind == "reg" else "predict_proba"
    np.testing.assert_allclose(getattr(model, method)(X_map), getattr(expected, method)(X))
    np.testing.assert_allclose(model.gate_proba(X_map), expected.gate_proba(X))
    np.testing.assert_array_equal(X_map, X)  # and nothing was written


@pytest.mark.parametrize("layout", ["strided", "fortran"])
@pytest.mark.parametrize("kind", KINDS)
def test_non_contiguous_arrays_built_in_experts(data, kind, layout, fixed_em):
    # another layout changes BLAS's order of summation; the fixture keeps EM
    # from parting at a discrete choice on a rounding difference
    X, y = _target(data, kind)
    if layout == "strided":
        wide = np.zeros((len(X), 2 * X.shape[1]))
        wide[:, ::2] = X
        X_view = wide[:, ::2]
        y_wide = np.zeros(2 * len(y), dtype=y.dtype)
        y_wide[::2] = y
        y_view = y_wide[::2]
    else:
        X_view, y_view = np.asfortranarray(X), y
    assert not X_view.flags.c_contiguous
    expected = _make(kind, max_iter=20, **fixed_em).fit(X, y)
    model = _make(kind, max_iter=20, **fixed_em).fit(X_view, y_view)
    method = "predict" if kind == "reg" else "predict_proba"
    np.testing.assert_allclose(
        getattr(model, method)(X_view), getattr(expected, method)(X), rtol=1e-7, atol=1e-9
    )


@pytest.mark.parametrize("layout", ["strided", "fortran"])
def test_non_contiguous_arrays_wrapped_experts(data, layout):
    # trees cut at thresholds, so rounding differences of 1e-15 between memory
    # layouts can move EM to another optimum: the same quality, not the same fit
    X, y, _ = data
    X_view = np.asfortranarray(X) if layout == "fortran" else np.repeat(X, 2, axis=1)[:, ::2]
    assert not X_view.flags.c_contiguous
    tree = DecisionTreeRegressor(max_depth=3)
    reference = MixtureOfExpertsRegressor(tree, random_state=0).fit(X, y).score(X, y)
    model = MixtureOfExpertsRegressor(tree, random_state=0).fit(X_view, y)
    _assert_sound(model, X_view, y, reference)


@pytest.mark.parametrize(
    "params",
    [{}, {"estimator": DecisionTreeRegressor(max_depth=3)}, {"solver": "gradient", "max_iter": 5}],
    ids=["builtin", "tree", "gradient"],
)
def test_inputs_are_not_modified(data, params):
    X, y, _ = data
    sample_weight = np.random.RandomState(1).uniform(0.5, 2.0, size=len(X))
    copies = X.copy(), y.copy(), sample_weight.copy()
    model = MixtureOfExpertsRegressor(n_experts=3, random_state=0, **params)
    model.fit(X, y, sample_weight=sample_weight).predict(X)
    for given_array, copy in zip((X, y, sample_weight), copies, strict=True):
        np.testing.assert_array_equal(given_array, copy)


def test_target_at_1e200_scale(data):
    # finite, but its square overflows: fit it, or say that y is too large
    X, y, _ = data
    y_big = y * 1e200
    model = MixtureOfExpertsRegressor(n_experts=2, random_state=0)
    try:
        model.fit(X, y_big)
    except ValueError as error:
        assert re.search(r"\by\b", str(error)), str(error)
    else:
        mean, std = model.predict(X, return_std=True)
        assert np.all(np.isfinite(mean)) and np.all(np.isfinite(std))
