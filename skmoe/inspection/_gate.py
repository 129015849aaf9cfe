"""Display of the gate over a 2-D slice of the input space."""

from numbers import Integral, Real

import numpy as np
from sklearn.utils.validation import check_array, check_is_fitted

from .._compat import check_matplotlib_support

_RESPONSES = ("regions", "proba")


def _check_features(features, n_features):
    """The two column indices of ``features``, or a ValueError naming what is wrong."""
    try:
        features = tuple(features)
    except TypeError:
        raise ValueError(f"features must be a pair of column indices, got {features!r}.") from None
    if len(features) != 2 or not all(
        isinstance(f, Integral) and not isinstance(f, bool) for f in features
    ):
        raise ValueError(f"features must be a pair of integer column indices, got {features!r}.")
    if features[0] == features[1]:
        raise ValueError(f"features must be two distinct columns, got {features!r}.")
    for f in features:
        if not 0 <= f < n_features:
            raise ValueError(
                f"features={features!r}: column {f} is out of range for X with "
                f"{n_features} features (valid: 0 to {n_features - 1})."
            )
    return int(features[0]), int(features[1])


def _check_expert(response, expert, n_experts):
    if response not in _RESPONSES:
        raise ValueError(f"response must be 'regions' or 'proba', got {response!r}.")
    if response == "regions":
        if expert is not None:
            # silently ignoring it would hide a forgotten response="proba"
            raise ValueError("expert is only used with response='proba'; leave it None.")
        return
    if expert is None:
        raise ValueError("response='proba' needs expert, the index of the expert to show.")
    if not isinstance(expert, Integral) or isinstance(expert, bool):
        raise ValueError(f"expert must be an integer index, got {expert!r}.")
    if not 0 <= expert < n_experts:
        raise ValueError(
            f"expert={expert} is out of range: the estimator has {n_experts} experts "
            f"(valid: 0 to {n_experts - 1})."
        )


def _region_colors(mpl, cmap, n_experts):
    """One colour per expert: the first colours of a listed colormap (tab10,
    tab20) when it has enough, else colours spread over the colormap."""
    if cmap is None:
        cmap = "tab10" if n_experts <= 10 else "tab20" if n_experts <= 20 else "turbo"
    base = mpl.colormaps.get_cmap(cmap)
    if isinstance(base, mpl.colors.ListedColormap) and base.N >= n_experts:
        return base(np.arange(n_experts))
    return base(np.linspace(0, 1, n_experts))


class GateDisplay:
    """The gate of a mixture of experts over a 2-D slice of the input space.

    Shows either which expert the gate picks at each point of a grid (its
    regions) or the gate probability of one expert. Use
    :meth:`from_estimator` to compute and plot it; the constructor takes
    computed grids, for plotting them again. All parameters are stored as
    attributes.

    Parameters
    ----------
    xx0 : ndarray of shape (grid_resolution, grid_resolution)
        First feature's values at the grid points (first output of
        :func:`numpy.meshgrid`).
    xx1 : ndarray of shape (grid_resolution, grid_resolution)
        Second feature's values at the grid points.
    response : ndarray of shape (grid_resolution, grid_resolution)
        The index of the most probable expert at each grid point when
        ``expert`` is None; otherwise the gate probability of ``expert``.
    n_experts : int
        Number of experts, so that each keeps its colour even where it wins
        no grid point.
    expert : int, default=None
        The expert whose gate probability ``response`` holds; None when
        ``response`` holds expert indices (the regions).
    feature_names : list of str, default=None
        Names of the two features, used as axis labels.

    Attributes
    ----------
    surface_ : matplotlib QuadMesh
        The coloured grid (:meth:`matplotlib.axes.Axes.pcolormesh`).
    colorbar_ : matplotlib Colorbar
        Colour key: experts ``0 .. n_experts - 1``, or probabilities 0 to 1.
    ax_ : matplotlib Axes
        Axes with the gate.
    figure_ : matplotlib Figure
        Figure containing the gate.

    See Also
    --------
    GateDisplay.from_estimator : Compute the gate on a grid and plot it.
    ExpertUsageDisplay : Share of rows each expert takes.
    skmoe.MixtureOfExpertsRegressor.gate_proba : The gate probabilities.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")  # no display needed
    >>> import numpy as np
    >>> from skmoe.inspection import GateDisplay
    >>> xx0, xx1 = np.meshgrid(np.linspace(-1, 1, 5), np.linspace(-1, 1, 5))
    >>> regions = (xx0 > 0).astype(int) + (xx1 > 0).astype(int)
    >>> disp = GateDisplay(xx0=xx0, xx1=xx1, response=regions, n_experts=3)
    >>> disp = disp.plot()
    >>> disp.colorbar_.ax.get_ylabel()
    'expert'
    """

    def __init__(self, *, xx0, xx1, response, n_experts, expert=None, feature_names=None):
        self.xx0 = xx0
        self.xx1 = xx1
        self.response = response
        self.n_experts = n_experts
        self.expert = expert
        self.feature_names = feature_names

    def plot(self, ax=None, *, cmap=None, alpha=0.6):
        """Plot the gate.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to plot on. None: a new figure and axes.
        cmap : str or matplotlib Colormap, default=None
            Colours. Regions take one colour per expert from it ("tab10", or
            "tab20" past 10 experts, by default); a probability is coloured
            along it ("viridis" by default).
        alpha : float, default=0.6
            Opacity of the surface, so that points drawn on top stand out.

        Returns
        -------
        display : GateDisplay
            The display, with the matplotlib objects stored.
        """
        check_matplotlib_support("GateDisplay.plot")
        import matplotlib as mpl
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots()
        fig = ax.figure
        # behind anything drawn on the axes before or after, like sklearn's displays
        style = dict(shading="nearest", alpha=alpha, zorder=-1)
        if self.expert is None:
            colors = _region_colors(mpl, cmap, self.n_experts)
            # bins centred on the integers: expert k gets colour k whatever the
            # grid contains
            norm = mpl.colors.BoundaryNorm(np.arange(self.n_experts + 1) - 0.5, self.n_experts)
            cmap = mpl.colors.ListedColormap(colors)
            self.surface_ = ax.pcolormesh(
                self.xx0, self.xx1, self.response, cmap=cmap, norm=norm, **style
            )
            self.colorbar_ = fig.colorbar(
                self.surface_, ax=ax, ticks=np.arange(self.n_experts), label="expert"
            )
        else:
            self.surface_ = ax.pcolormesh(
                self.xx0,
                self.xx1,
                self.response,
                cmap="viridis" if cmap is None else cmap,
                vmin=0.0,
                vmax=1.0,
                **style,
            )
            self.colorbar_ = fig.colorbar(
                self.surface_, ax=ax, label=f"gate probability of expert {self.expert}"
            )
        if self.feature_names is not None:
            ax.set_xlabel(self.feature_names[0])
            ax.set_ylabel(self.feature_names[1])
        self.ax_ = ax
        self.figure_ = fig
        return self

    @classmethod
    def from_estimator(
        cls,
        estimator,
        X,
        *,
        features=(0, 1),
        grid_resolution=100,
        response="regions",
        expert=None,
        eps=1.0,
        ax=None,
        cmap=None,
        alpha=0.6,
    ):
        """Compute the gate of a fitted mixture on a grid and plot it.

        The grid spans the range of the two ``features`` over ``X``, widened
        by ``eps`` on each side. It is a slice of the input space: every other
        feature is held at its mean over ``X``, so the picture shows the gate
        at those values only; with more than two features it can differ
        elsewhere.

        Parameters
        ----------
        estimator : MixtureOfExpertsRegressor or MixtureOfExpertsClassifier
            A fitted mixture (anything with ``gate_proba``, ``predict_expert``,
            ``estimators_`` and ``n_features_in_``).
        X : array-like of shape (n_samples, n_features)
            Data giving the grid's range and the other features' means, with
            the ``n_features_in_`` columns the estimator was fitted on. A
            DataFrame's column names label the axes.
        features : tuple of two int, default=(0, 1)
            Column indices of the two features on the x and y axes.
        grid_resolution : int, default=100
            Grid points along each axis.
        response : {"regions", "proba"}, default="regions"
            "regions": colour each point by its most probable expert
            (``predict_expert``). "proba": the gate probability of ``expert``.
        expert : int, default=None
            The expert shown by ``response="proba"`` (required there, unused
            otherwise).
        eps : float, default=1.0
            Margin added to both ends of each feature's range.
        ax : matplotlib Axes, default=None
            Axes to plot on. None: a new figure and axes.
        cmap : str or matplotlib Colormap, default=None
            See :meth:`plot`.
        alpha : float, default=0.6
            Opacity of the surface.

        Returns
        -------
        display : GateDisplay
            The computed grid and the matplotlib objects.

        See Also
        --------
        GateDisplay : The display, from computed grids.
        ExpertUsageDisplay.from_estimator : Share of rows each expert takes.

        Examples
        --------
        >>> import matplotlib
        >>> matplotlib.use("Agg")  # no display needed
        >>> from skmoe import MixtureOfExpertsRegressor
        >>> from skmoe.datasets import make_regime_regression
        >>> from skmoe.inspection import GateDisplay
        >>> X, y = make_regime_regression(n_samples=200, n_features=2, n_regimes=3,
        ...                               random_state=0)
        >>> moe = MixtureOfExpertsRegressor(n_experts=3, random_state=0).fit(X, y)
        >>> disp = GateDisplay.from_estimator(moe, X, grid_resolution=30)
        >>> disp.response.shape
        (30, 30)
        >>> disp = GateDisplay.from_estimator(moe, X, response="proba", expert=0)
        >>> bool(0 <= disp.response.min() <= disp.response.max() <= 1)
        True
        """
        check_is_fitted(estimator)
        n_experts = len(estimator.estimators_)
        _check_expert(response, expert, n_experts)
        if not isinstance(grid_resolution, Integral) or grid_resolution < 2:
            raise ValueError(f"grid_resolution must be an integer >= 2, got {grid_resolution!r}.")
        if not isinstance(eps, Real) or not eps >= 0:
            raise ValueError(f"eps must be a number >= 0, got {eps!r}.")
        columns = getattr(X, "columns", None)
        X_arr = check_array(X, dtype=[np.float64, np.float32])
        if X_arr.shape[1] != estimator.n_features_in_:
            raise ValueError(
                f"X has {X_arr.shape[1]} features, but the estimator was fitted on "
                f"{estimator.n_features_in_}."
            )
        f0, f1 = _check_features(features, X_arr.shape[1])

        xx0, xx1 = np.meshgrid(
            np.linspace(X_arr[:, f0].min() - eps, X_arr[:, f0].max() + eps, grid_resolution),
            np.linspace(X_arr[:, f1].min() - eps, X_arr[:, f1].max() + eps, grid_resolution),
        )
        grid = np.tile(X_arr.mean(axis=0), (xx0.size, 1))
        grid[:, f0] = xx0.ravel()
        grid[:, f1] = xx1.ravel()
        if columns is not None and hasattr(X, "iloc"):
            # a pandas X keeps its column names, so a model fitted on them
            # does not warn about missing feature names
            grid = type(X)(grid, columns=columns)

        if response == "regions":
            values = estimator.predict_expert(grid)
        else:
            values = estimator.gate_proba(grid)[:, expert]
        if columns is not None:
            feature_names = [str(columns[f0]), str(columns[f1])]
        else:
            feature_names = [f"x{f0}", f"x{f1}"]
        display = cls(
            xx0=xx0,
            xx1=xx1,
            response=np.asarray(values).reshape(xx0.shape),
            n_experts=n_experts,
            expert=expert,
            feature_names=feature_names,
        )
        return display.plot(ax=ax, cmap=cmap, alpha=alpha)
