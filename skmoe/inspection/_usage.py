"""Display of how much each expert is used: its load and its importance."""

import numpy as np
from sklearn.utils.validation import check_is_fitted

from .._backend import to_numpy
from .._compat import check_matplotlib_support

_BAR_WIDTH = 0.4


def _check_shares(load, importance):
    """``load`` and ``importance`` as float vectors, or a ValueError naming what is wrong."""
    shares = {}
    for name, values in (("load", load), ("importance", importance)):
        values = np.asarray(to_numpy(values), dtype=float)
        if values.ndim != 1 or values.size == 0:
            raise ValueError(
                f"{name} must be a non-empty 1-D array (one value per expert), "
                f"got shape {values.shape}."
            )
        if not np.all(np.isfinite(values)) or np.any(values < 0):
            raise ValueError(f"{name} must be finite and non-negative, got {values}.")
        shares[name] = values
    if shares["load"].size != shares["importance"].size:
        raise ValueError(
            f"load and importance must have one value per expert each, got lengths "
            f"{shares['load'].size} and {shares['importance'].size}."
        )
    return shares["load"], shares["importance"]


class ExpertUsageDisplay:
    """Per-expert load and importance of a mixture, as side-by-side bars.

    The load of an expert is the share of rows routed to it, its importance
    the share of the gate probability it holds. Experts with little load are
    nearly idle; a load far from uniform shows an unbalanced gate. Use
    :meth:`from_estimator` for a fitted mixture's training shares; the
    constructor takes any two arrays (checked when plotted). All parameters
    are stored as attributes.

    Parameters
    ----------
    load : array-like of shape (n_experts,)
        Share of rows routed to each expert, non-negative.
    importance : array-like of shape (n_experts,)
        Share of the gate probability mass of each expert, non-negative.

    Attributes
    ----------
    bars_ : tuple of two matplotlib BarContainer
        The load bars and the importance bars.
    ax_ : matplotlib Axes
        Axes with the bars.
    figure_ : matplotlib Figure
        Figure containing the bars.

    See Also
    --------
    ExpertUsageDisplay.from_estimator : Plot a fitted mixture's usage.
    GateDisplay : The gate's regions over two features.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")  # no display needed
    >>> from skmoe.inspection import ExpertUsageDisplay
    >>> disp = ExpertUsageDisplay(load=[0.5, 0.3, 0.2], importance=[0.4, 0.35, 0.25])
    >>> disp = disp.plot()
    >>> [float(bar.get_height()) for bar in disp.bars_[0]]
    [0.5, 0.3, 0.2]
    """

    def __init__(self, load, importance):
        self.load = load
        self.importance = importance

    def plot(self, ax=None):
        """Plot the bars.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Axes to plot on. None: a new figure and axes.

        Returns
        -------
        display : ExpertUsageDisplay
            The display, with the matplotlib objects stored.
        """
        check_matplotlib_support("ExpertUsageDisplay.plot")
        import matplotlib.pyplot as plt

        load, importance = _check_shares(self.load, self.importance)
        if ax is None:
            _, ax = plt.subplots()
        experts = np.arange(load.size)
        self.bars_ = (
            ax.bar(experts - _BAR_WIDTH / 2, load, _BAR_WIDTH, label="load (rows routed)"),
            ax.bar(
                experts + _BAR_WIDTH / 2,
                importance,
                _BAR_WIDTH,
                label="importance (gate probability)",
            ),
        )
        ax.set_xticks(experts)
        # headroom above the tallest bar, so that the legend does not hide it
        ax.set_ylim(0, 1.3 * max(load.max(), importance.max()) or 1.0)
        ax.set(xlabel="expert", ylabel="share of rows", title="expert usage")
        ax.legend()
        self.ax_ = ax
        self.figure_ = ax.figure
        return self

    @classmethod
    def from_estimator(cls, estimator, *, ax=None):
        """Plot the load and importance of a fitted mixture's experts.

        Uses ``expert_load_`` and ``expert_importance_``, the shares measured
        on the training rows.

        Parameters
        ----------
        estimator : MixtureOfExpertsRegressor or MixtureOfExpertsClassifier
            A fitted mixture.
        ax : matplotlib Axes, default=None
            Axes to plot on. None: a new figure and axes.

        Returns
        -------
        display : ExpertUsageDisplay
            The shares and the matplotlib objects.

        See Also
        --------
        ExpertUsageDisplay : The display, from any two arrays.
        GateDisplay.from_estimator : The gate's regions over two features.

        Examples
        --------
        >>> import matplotlib
        >>> matplotlib.use("Agg")  # no display needed
        >>> from skmoe import MixtureOfExpertsRegressor
        >>> from skmoe.datasets import make_regime_regression
        >>> from skmoe.inspection import ExpertUsageDisplay
        >>> X, y = make_regime_regression(n_samples=200, n_features=2, n_regimes=3,
        ...                               random_state=0)
        >>> moe = MixtureOfExpertsRegressor(n_experts=3, random_state=0).fit(X, y)
        >>> disp = ExpertUsageDisplay.from_estimator(moe)
        >>> len(disp.bars_[0]), len(disp.bars_[1])
        (3, 3)
        """
        check_is_fitted(estimator, ["expert_load_", "expert_importance_"])
        display = cls(load=estimator.expert_load_, importance=estimator.expert_importance_)
        return display.plot(ax=ax)
