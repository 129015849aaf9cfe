"""GateDisplay and ExpertUsageDisplay: the data they compute, what they draw, their errors."""

import io
import struct
import subprocess
import sys
import warnings

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from skmoe import MixtureOfExpertsClassifier, MixtureOfExpertsRegressor
from skmoe.datasets import make_regime_regression
from skmoe.inspection import ExpertUsageDisplay, GateDisplay

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
