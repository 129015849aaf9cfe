"""GateDisplay and ExpertUsageDisplay: the data they compute, what they draw, their
errors; expert_report and gate_rules: the numbers and rules they give, their errors."""

import io
import re
import struct
import subprocess
import sys
import warnings

import numpy as np
import pytest
from sklearn.base import is_classifier
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import Ridge
from sklearn.metrics import accuracy_score
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor, export_text

from skmoe import MixtureOfExpertsClassifier, MixtureOfExpertsRegressor
from skmoe.datasets import make_regime_regression
from skmoe.inspection import (
    ExpertReport,
    ExpertUsageDisplay,
    GateDisplay,
    GateRules,
    expert_report,
    gate_rules,
)

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.image  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

N_EXPERTS = 3


@pytest.fixture(scope="module")
def data():
    return make_regime_regression(n_samples=300, n_features=3, n_regimes=3, random_state=0)


@pytest.fixture(scope="module", params=["regressor", "classifier"])
def fitted(request, data):
    X, y = data
    if request.param == "regressor":
        return MixtureOfExpertsRegressor(n_experts=N_EXPERTS, random_state=0).fit(X, y)
    y_class = (y > np.median(y)).astype(int)
    return MixtureOfExpertsClassifier(n_experts=N_EXPERTS, random_state=0).fit(X, y_class)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def grid_rows(disp, X, features):
    """The rows the display evaluated: the grid on ``features``, the other
    columns at their means."""
    rows = np.tile(X.mean(axis=0), (disp.xx0.size, 1))
    rows[:, features[0]] = disp.xx0.ravel()
    rows[:, features[1]] = disp.xx1.ravel()
    return rows


def png_size(fig, dpi):
    """(width, height) in pixels of the figure saved as PNG, from the IHDR chunk."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    header = buffer.getvalue()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n" and header[12:16] == b"IHDR"
    buffer.seek(0)
    image = matplotlib.image.imread(buffer, format="png")
    width, height = struct.unpack(">II", header[16:24])
    assert image.shape[:2] == (height, width)
    return width, height


# ---------------------------------------------------------------- GateDisplay
def test_gate_regions_equal_predict_expert(fitted, data):
    X, _ = data
    features, eps = (0, 2), 0.5
    disp = GateDisplay.from_estimator(fitted, X, features=features, grid_resolution=15, eps=eps)

    assert disp.xx0.shape == disp.xx1.shape == disp.response.shape == (15, 15)
    assert disp.xx0.min() == pytest.approx(X[:, 0].min() - eps)
    assert disp.xx0.max() == pytest.approx(X[:, 0].max() + eps)
    assert disp.xx1.min() == pytest.approx(X[:, 2].min() - eps)
    assert disp.xx1.max() == pytest.approx(X[:, 2].max() + eps)
    expected = fitted.predict_expert(grid_rows(disp, X, features)).reshape(15, 15)
    np.testing.assert_array_equal(disp.response, expected)
    # the drawn mesh holds those values, and the key lists every expert
    np.testing.assert_array_equal(np.ravel(disp.surface_.get_array()), expected.ravel())
    np.testing.assert_array_equal(disp.colorbar_.get_ticks(), np.arange(N_EXPERTS))
    assert disp.n_experts == N_EXPERTS and disp.expert is None
    assert disp.feature_names == ["x0", "x2"]
    assert (disp.ax_.get_xlabel(), disp.ax_.get_ylabel()) == ("x0", "x2")


def test_gate_regions_colour_each_expert_alike(fitted, data):
    # expert k has colour k whatever subset of experts the grid shows
    X, _ = data
    disp = GateDisplay.from_estimator(fitted, X, grid_resolution=10)
    colors = disp.surface_.cmap(disp.surface_.norm(np.arange(N_EXPERTS)))
    assert len({tuple(c) for c in colors}) == N_EXPERTS


def test_gate_proba_equals_gate_proba(fitted, data):
    X, _ = data
    disp = GateDisplay.from_estimator(
        fitted, X, features=(1, 0), grid_resolution=12, response="proba", expert=1
    )
    expected = fitted.gate_proba(grid_rows(disp, X, (1, 0)))[:, 1].reshape(12, 12)
    np.testing.assert_allclose(disp.response, expected)
    assert disp.expert == 1
    assert disp.surface_.norm.vmin == 0 and disp.surface_.norm.vmax == 1
    assert "expert 1" in disp.colorbar_.ax.get_ylabel()
    assert disp.feature_names == ["x1", "x0"]


def test_gate_feature_names_from_dataframe(data):
    pd = pytest.importorskip("pandas")
    X, y = data
    df = pd.DataFrame(X, columns=["a", "b", "c"])
    moe = MixtureOfExpertsRegressor(n_experts=N_EXPERTS, random_state=0).fit(df, y)
    with warnings.catch_warnings():
        # the grid keeps the column names: no "X does not have valid feature names"
        warnings.simplefilter("error", UserWarning)
        disp = GateDisplay.from_estimator(moe, df, features=(2, 1), grid_resolution=8)
    assert disp.feature_names == ["c", "b"]
    assert (disp.ax_.get_xlabel(), disp.ax_.get_ylabel()) == ("c", "b")
    rows = pd.DataFrame(grid_rows(disp, X, (2, 1)), columns=df.columns)
    expected = moe.predict_expert(rows).reshape(8, 8)
    np.testing.assert_array_equal(disp.response, expected)


def test_gate_png_size(fitted, data):
    X, _ = data
    disp = GateDisplay.from_estimator(fitted, X, grid_resolution=20)
    disp.figure_.set_size_inches(4, 3)
    assert png_size(disp.figure_, dpi=50) == (200, 150)


def test_gate_plot_on_given_ax(fitted, data):
    X, _ = data
    fig, (ax_a, ax_b) = plt.subplots(1, 2)
    disp = GateDisplay.from_estimator(fitted, X, grid_resolution=10, ax=ax_b)
    assert disp.ax_ is ax_b and disp.figure_ is fig
    assert disp.surface_ in ax_b.collections and not ax_a.collections
    # the computed grid plots again on other axes, with other colours
    disp.plot(ax=ax_a, cmap="Set2", alpha=1.0)
    assert disp.ax_ is ax_a and disp.surface_ in ax_a.collections
    assert disp.surface_.get_alpha() == 1.0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(features=(0, 0)), "two distinct columns"),
        (dict(features=(0, 3)), "column 3 is out of range"),
        (dict(features=(-1, 0)), "column -1 is out of range"),
        (dict(features=(0,)), "pair of integer column indices"),
        (dict(features=(0, 1, 2)), "pair of integer column indices"),
        (dict(features=(0.0, 1)), "pair of integer column indices"),
        (dict(features=0), "pair of column indices"),
        (dict(response="probability"), "response must be 'regions' or 'proba'"),
        (dict(response="proba"), "response='proba' needs expert"),
        (dict(response="proba", expert=N_EXPERTS), f"expert={N_EXPERTS} is out of range"),
        (dict(response="proba", expert=-1), "expert=-1 is out of range"),
        (dict(response="proba", expert=1.5), "expert must be an integer"),
        (dict(expert=1), "expert is only used with response='proba'"),
        (dict(grid_resolution=1), "grid_resolution must be an integer >= 2"),
        (dict(eps=-1.0), "eps must be a number >= 0"),
    ],
)
def test_gate_bad_parameters(fitted, data, kwargs, message):
    X, _ = data
    with pytest.raises(ValueError, match=message):
        GateDisplay.from_estimator(fitted, X, **kwargs)


def test_gate_bad_X(fitted, data):
    X, _ = data
    with pytest.raises(ValueError, match="X has 2 features, but the estimator was fitted on 3"):
        GateDisplay.from_estimator(fitted, X[:, :2])
    with pytest.raises(ValueError, match="Expected 2D array"):
        GateDisplay.from_estimator(fitted, X[:, 0])


def test_gate_unfitted(data):
    X, _ = data
    with pytest.raises(NotFittedError):
        GateDisplay.from_estimator(MixtureOfExpertsRegressor(), X)


# ---------------------------------------------------------------- ExpertUsageDisplay
def bar_heights(bars):
    return np.array([bar.get_height() for bar in bars])


def test_usage_bars_equal_fitted_shares(fitted):
    disp = ExpertUsageDisplay.from_estimator(fitted)
    load_bars, importance_bars = disp.bars_
    np.testing.assert_allclose(bar_heights(load_bars), fitted.expert_load_)
    np.testing.assert_allclose(bar_heights(importance_bars), fitted.expert_importance_)
    # side by side: expert k's two bars sit either side of tick k
    centres = [[bar.get_x() + bar.get_width() / 2 for bar in bars] for bars in disp.bars_]
    np.testing.assert_allclose(np.mean(centres, axis=0), np.arange(N_EXPERTS))
    np.testing.assert_array_equal(disp.ax_.get_xticks(), np.arange(N_EXPERTS))
    assert disp.ax_.get_xlabel() == "expert"
    assert disp.ax_.get_ylabel() == "share of rows"
    assert len(disp.ax_.get_legend().get_texts()) == 2


def test_usage_from_any_arrays():
    load, importance = [2.0, 0.0, 1.0, 5.0], np.array([1, 1, 1, 1])
    disp = ExpertUsageDisplay(load=load, importance=importance).plot()
    np.testing.assert_allclose(bar_heights(disp.bars_[0]), load)
    np.testing.assert_allclose(bar_heights(disp.bars_[1]), importance)
    assert disp.ax_.get_ylim()[1] > 5.0  # every bar fits
    # all-zero shares still plot
    disp = ExpertUsageDisplay(np.zeros(2), np.zeros(2)).plot()
    assert bar_heights(disp.bars_[0]).tolist() == [0.0, 0.0]


def test_usage_png_size(fitted):
    disp = ExpertUsageDisplay.from_estimator(fitted)
    disp.figure_.set_size_inches(5, 2.5)
    assert png_size(disp.figure_, dpi=40) == (200, 100)


def test_usage_plot_on_given_ax(fitted):
    fig, (ax_a, ax_b) = plt.subplots(1, 2)
    disp = ExpertUsageDisplay.from_estimator(fitted, ax=ax_a)
    assert disp.ax_ is ax_a and disp.figure_ is fig
    assert all(bars in ax_a.containers for bars in disp.bars_)
    assert not ax_b.containers


@pytest.mark.parametrize(
    "load, importance, message",
    [
        ([0.5, 0.5], [0.2, 0.3, 0.5], "lengths 2 and 3"),
        ([0.5, -0.1], [0.5, 0.5], "load must be finite and non-negative"),
        ([0.5, 0.5], [np.nan, 0.5], "importance must be finite and non-negative"),
        ([[0.5, 0.5]], [0.5, 0.5], r"load must be a non-empty 1-D array.*shape \(1, 2\)"),
        ([], [], r"load must be a non-empty 1-D array.*shape \(0,\)"),
    ],
)
def test_usage_bad_arrays(load, importance, message):
    with pytest.raises(ValueError, match=message):
        ExpertUsageDisplay(load=load, importance=importance).plot()


def test_usage_unfitted():
    with pytest.raises(NotFittedError):
        ExpertUsageDisplay.from_estimator(MixtureOfExpertsRegressor())


# ---------------------------------------------------------------- matplotlib stays optional
def test_import_without_matplotlib():
    code = (
        "import sys; sys.modules['matplotlib'] = None\n"  # any import of it fails
        "from skmoe.inspection import ExpertUsageDisplay, GateDisplay\n"
        "try:\n"
        "    ExpertUsageDisplay([1.0], [1.0]).plot()\n"
        "except ImportError as e:\n"
        "    assert 'requires matplotlib' in str(e), e\n"
        "else:\n"
        "    raise AssertionError('plot ran without matplotlib')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


# ---------------------------------------------------------------- expert_report
def target(model, y):
    """The fixture's regression target, or the classes the classifier was fitted on."""
    return (y > np.median(y)).astype(int) if is_classifier(model) else y


def test_report_shares_equal_predict_expert(fitted, data):
    X, y = data
    report = expert_report(fitted, X, target(fitted, y))
    assert isinstance(report, ExpertReport) and len(report) == N_EXPERTS
    assert report.n_samples == X.shape[0]
    assert [s.expert for s in report] == list(range(N_EXPERTS))
    shares = np.array([s.share for s in report])
    expected = np.bincount(fitted.predict_expert(X), minlength=N_EXPERTS) / X.shape[0]
    np.testing.assert_allclose(shares, expected)
    assert shares.sum() == pytest.approx(1.0)
    # on the training rows under a dense gate, the share is the training load
    np.testing.assert_allclose(shares, fitted.expert_load_)


def test_report_metric_on_handled_rows(fitted, data):
    X, y = data
    y = target(fitted, y)
    report = expert_report(fitted, X, y)
    routed = fitted.predict_expert(X)
    for k, summary in enumerate(report):
        rows = routed == k
        predicted = fitted.estimators_[k].predict(X[rows])
        if is_classifier(fitted):
            assert summary.metric_name == "accuracy"
            expected = accuracy_score(y[rows], fitted.classes_[predicted])
        else:
            assert summary.metric_name == "rmse"
            expected = np.sqrt(np.mean((y[rows] - predicted) ** 2))
        assert summary.metric == pytest.approx(expected)


def test_report_regression_experts_fit_their_regimes():
    # data the mixture fits well: each expert's error is near the noise (0.1)
    X, y, _ = axis_aligned_regimes()
    reg = MixtureOfExpertsRegressor(n_experts=2, random_state=0).fit(X, y)
    assert all(s.metric < 0.15 for s in expert_report(reg, X, y))


@pytest.mark.parametrize("n_coefficients", [1, 2, 3, 10])
def test_report_coefficients_are_the_largest(fitted, data, n_coefficients):
    X, y = data
    report = expert_report(fitted, X, target(fitted, y), n_coefficients=n_coefficients)
    for summary, expert in zip(report, fitted.estimators_, strict=True):
        coef = np.ravel(expert.coef_)  # a binary classifier's one row
        order = np.argsort(-np.abs(coef))[:n_coefficients]
        expected = [(f"x{j}", coef[j]) for j in order]
        assert len(summary.coefficients) == min(n_coefficients, X.shape[1])
        assert [name for name, _ in summary.coefficients] == [name for name, _ in expected]
        np.testing.assert_allclose([v for _, v in summary.coefficients], coef[order])
        magnitudes = np.abs([v for _, v in summary.coefficients])
        assert np.all(np.diff(magnitudes) <= 0)


def test_report_multiclass_names_classes(data):
    # string labels: the experts' classes are indices that the report maps back
    X, y = data
    labels = np.array(["high", "low", "mid"])[np.digitize(y, np.quantile(y, [1 / 3, 2 / 3]))]
    clf = MixtureOfExpertsClassifier(n_experts=N_EXPERTS, random_state=0).fit(X, labels)
    report = expert_report(clf, X, labels, n_coefficients=4)
    routed = clf.predict_expert(X)
    for k, summary in enumerate(report):
        expert = clf.estimators_[k]
        rows = routed == k
        expected = accuracy_score(labels[rows], clf.classes_[expert.predict(X[rows])])
        assert summary.metric == pytest.approx(expected) and summary.metric > 0.5
        names = [f"x{j} (class {c})" for c in clf.classes_ for j in range(X.shape[1])]
        order = np.argsort(-np.abs(expert.coef_.ravel()))[:4]
        assert [name for name, _ in summary.coefficients] == [names[i] for i in order]


def test_report_feature_names_from_dataframe(data):
    pd = pytest.importorskip("pandas")
    X, y = data
    df = pd.DataFrame(X, columns=["a", "b", "c"])
    reg = MixtureOfExpertsRegressor(n_experts=N_EXPERTS, random_state=0).fit(df, y)
    with warnings.catch_warnings():
        # the experts get the array they were fitted on: no feature-name warning
        warnings.simplefilter("error", UserWarning)
        report = expert_report(reg, df, y)
        rules = gate_rules(reg, df, random_state=0)
    for summary in report:
        assert {name for name, _ in summary.coefficients} <= {"a", "b", "c"}
    assert rules.feature_names == ["a", "b", "c"]
    assert "x0" not in rules.text and any(f"--- {c} " in rules.text for c in "abc")
    # the same numbers as for the array
    reg_array = MixtureOfExpertsRegressor(n_experts=N_EXPERTS, random_state=0).fit(X, y)
    array_report = expert_report(reg_array, X, y)
    np.testing.assert_allclose([s.metric for s in report], [s.metric for s in array_report])


@pytest.mark.parametrize("model", ["regressor", "classifier"])
def test_report_wrapped_experts_have_no_coefficients(data, model):
    X, y = data
    if model == "regressor":
        est = MixtureOfExpertsRegressor(
            DecisionTreeRegressor(max_depth=3), n_experts=N_EXPERTS, random_state=0
        )
    else:
        y = (y > np.median(y)).astype(int)
        est = MixtureOfExpertsClassifier(
            DecisionTreeClassifier(max_depth=3), n_experts=N_EXPERTS, random_state=0
        )
    est.fit(X, y)
    report = expert_report(est, X, y)
    assert all(s.coefficients is None for s in report)
    shares = [s.share for s in report]
    expected = np.bincount(est.predict_expert(X), minlength=N_EXPERTS) / X.shape[0]
    np.testing.assert_allclose(shares, expected)
    handled = [s.metric for s in report if s.share > 0]
    assert handled and np.all(np.isfinite(handled))
    # the table marks the missing coefficients
    assert all(line.endswith("  -") for line in report.to_text().splitlines()[1:])


def test_report_wrapped_linear_experts_have_coefficients(data):
    X, y = data
    reg = MixtureOfExpertsRegressor(Ridge(), n_experts=N_EXPERTS, random_state=0).fit(X, y)
    for summary, expert in zip(
        expert_report(reg, X, y, n_coefficients=1), reg.estimators_, strict=True
    ):
        j = np.argmax(np.abs(expert.coef_))
        assert summary.coefficients == ((f"x{j}", pytest.approx(expert.coef_[j])),)


def test_report_expert_without_rows(fitted, data):
    # rows of one expert only: the others handle none, with no metric
    X, y = data
    y = target(fitted, y)
    routed = fitted.predict_expert(X)
    rows = routed == routed[0]
    report = expert_report(fitted, X[rows], y[rows])
    for summary in report:
        if summary.expert == routed[0]:
            assert summary.share == 1.0 and np.isfinite(summary.metric)
        else:
            assert summary.share == 0.0 and np.isnan(summary.metric)
            assert summary.coefficients is not None
    assert "nan" in report.to_text()


def test_reports_sparse_X(data):
    sparse = pytest.importorskip("scipy.sparse")
    X, y = data
    X_sparse = sparse.csr_matrix(X)
    reg = MixtureOfExpertsRegressor(n_experts=N_EXPERTS, random_state=0).fit(X_sparse, y)
    from_sparse, dense = expert_report(reg, X_sparse, y), expert_report(reg, X, y)
    for a, b in zip(from_sparse, dense, strict=True):
        assert a.share == b.share and a.coefficients == b.coefficients
        assert a.metric == pytest.approx(b.metric)
    rules = gate_rules(reg, X_sparse, random_state=0)
    assert rules.text == gate_rules(reg, X, random_state=0).text


def test_report_text(fitted, data):
    X, y = data
    report = expert_report(fitted, X, target(fitted, y), n_coefficients=2)
    lines = str(report).splitlines()
    assert str(report) == report.to_text()
    metric_name = "accuracy" if is_classifier(fitted) else "rmse"
    assert lines[0].split() == ["expert", "share", metric_name, "largest", "coefficients"]
    assert len(lines) == 1 + N_EXPERTS
    for line, summary in zip(lines[1:], report, strict=True):
        expert, share, metric = line.split()[:3]
        assert int(expert) == summary.expert
        assert float(share) == pytest.approx(summary.share, abs=5e-4)
        assert float(metric) == pytest.approx(summary.metric, abs=5e-4)
        name, value = summary.coefficients[0]
        assert f"{name}={value:+.3f}" in line
    # the first three columns right-aligned: each ends at the same place on every line
    ends = [[m.end() for m in re.finditer(r"\S+", line)][:3] for line in lines]
    assert all(e == ends[0] for e in ends)
    assert report.to_text(decimals=1).splitlines()[1].split()[1] == f"{report[0].share:.1f}"


# ---------------------------------------------------------------- gate_rules
def axis_aligned_regimes(n_samples=600, random_state=0):
    """Two linear regimes split at x0 = 0, no row within 1 of the split
    (make_regime_regression's regimes are Voronoi cells, split by oblique
    boundaries): a depth-1 tree restates a gate that finds them."""
    rng = np.random.RandomState(random_state)
    X = rng.uniform(-1, 1, size=(n_samples, 3))
    X[:, 0] += np.sign(X[:, 0])
    regimes = (X[:, 0] > 0).astype(int)
    y = np.where(regimes, 1 - 3 * X[:, 2], 2 * X[:, 1] - X[:, 2])
    return X, y + 0.1 * rng.standard_normal(n_samples), regimes


def test_gate_rules_fidelity_is_tree_agreement(fitted, data):
    X, _ = data
    rules = gate_rules(fitted, X, max_depth=2, random_state=0)
    assert isinstance(rules, GateRules)
    assert isinstance(rules.tree, DecisionTreeClassifier)
    assert rules.tree.get_depth() <= 2 and rules.tree.max_depth == 2
    agreement = np.mean(rules.tree.predict(X) == fitted.predict_expert(X))
    assert rules.fidelity == pytest.approx(agreement)
    assert 0 < rules.fidelity <= 1
    names = ["x0", "x1", "x2"]
    assert rules.feature_names == names
    classes = [f"expert {k}" for k in rules.tree.classes_]
    assert rules.text == export_text(rules.tree, feature_names=names, class_names=classes)
    assert str(rules) == rules.text


def test_gate_rules_deeper_is_no_less_faithful(fitted, data):
    X, _ = data
    fidelity = [gate_rules(fitted, X, max_depth=d, random_state=0).fidelity for d in (1, 3, 8)]
    assert fidelity == sorted(fidelity)
    assert fidelity[-1] >= 0.9


def test_gate_rules_axis_aligned_regimes():
    X, y, regimes = axis_aligned_regimes()
    reg = MixtureOfExpertsRegressor(n_experts=2, random_state=0).fit(X, y)
    routed = reg.predict_expert(X)
    # the gate found the regimes (up to the experts' order)
    assert max(np.mean(routed == regimes), np.mean(routed != regimes)) == 1.0
    rules = gate_rules(reg, X, max_depth=2, random_state=0)
    assert rules.fidelity >= 0.99
    assert rules.tree.tree_.feature[0] == 0  # the root splits on x0
    assert abs(rules.tree.tree_.threshold[0]) < 1  # in the gap around 0
    assert rules.text.startswith("|--- x0 <= ")
    for k in range(2):
        assert f"class: expert {k}" in rules.text


def test_gate_rules_random_state(fitted, data):
    X, _ = data
    first, second = (gate_rules(fitted, X, random_state=3) for _ in range(2))
    assert first.text == second.text and first.fidelity == second.fidelity
    assert gate_rules(fitted, X).tree.max_depth == 3  # the default depth


# ---------------------------------------------------------------- their errors
def test_reports_unfitted(data):
    X, y = data
    for model in (MixtureOfExpertsRegressor(), MixtureOfExpertsClassifier()):
        with pytest.raises(NotFittedError):
            expert_report(model, X, y)
        with pytest.raises(NotFittedError):
            gate_rules(model, X)


def test_reports_bad_X(fitted, data):
    X, y = data
    y = target(fitted, y)
    message = "X has 2 features, but the estimator was fitted on 3"
    with pytest.raises(ValueError, match=message):
        expert_report(fitted, X[:, :2], y)
    with pytest.raises(ValueError, match=message):
        gate_rules(fitted, X[:, :2])
    with pytest.raises(ValueError, match="Expected 2D array"):
        gate_rules(fitted, X[:, 0])
    X_nan = X.copy()
    X_nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        expert_report(fitted, X_nan, y)


def test_report_bad_y(fitted, data):
    X, y = data
    y = target(fitted, y)
    with pytest.raises(ValueError, match=f"y has {X.shape[0] - 1} values, but X has {X.shape[0]}"):
        expert_report(fitted, X, y[1:])
    with pytest.raises(ValueError, match="y should be a 1d array"):
        expert_report(fitted, X, np.column_stack([y, y]))


@pytest.mark.parametrize("n_coefficients", [0, -1, 1.5, "3"])
def test_report_bad_n_coefficients(fitted, data, n_coefficients):
    X, y = data
    with pytest.raises(ValueError, match="'n_coefficients' parameter of expert_report"):
        expert_report(fitted, X, target(fitted, y), n_coefficients=n_coefficients)


@pytest.mark.parametrize("max_depth", [0, -2, 2.5, None])
def test_gate_rules_bad_max_depth(fitted, data, max_depth):
    X, _ = data
    with pytest.raises(ValueError, match="'max_depth' parameter of gate_rules"):
        gate_rules(fitted, X, max_depth=max_depth)


def test_reports_need_a_mixture(data):
    X, y = data
    with pytest.raises(ValueError, match="implementing 'predict_expert'"):
        expert_report(Ridge().fit(X, y), X, y)
    with pytest.raises(ValueError, match="implementing 'predict_expert'"):
        gate_rules(Ridge().fit(X, y), X)


def test_reports_without_matplotlib():
    code = (
        "import sys; sys.modules['matplotlib'] = None\n"  # any import of it fails
        "import numpy as np\n"
        "from skmoe import MixtureOfExpertsRegressor\n"
        "from skmoe.inspection import expert_report, gate_rules\n"
        "X = np.random.RandomState(0).normal(size=(60, 2)); y = X[:, 0] * (X[:, 1] > 0)\n"
        "reg = MixtureOfExpertsRegressor(n_experts=2, random_state=0).fit(X, y)\n"
        "print(expert_report(reg, X, y)); print(gate_rules(reg, X))\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
