"""
Regime regression: a gate and its experts
=========================================

With one input feature, everything a mixture of experts learns can be drawn.
Here ``y`` is piecewise linear in ``x``: three regimes with three different
slopes. A mixture of three ridge experts is fitted next to gradient boosting
and a stacked ensemble; then the mixture is opened up to show how its gate
splits the input and what line each expert draws in its own region.
"""

# %%
# Data: three linear regimes in one dimension
# -------------------------------------------
# The law of ``y`` bends at ``x = -1`` and ``x = 1`` and is continuous there;
# the slopes and breakpoints are set here and used again below to check what
# the mixture finds.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor, StackingRegressor
from sklearn.linear_model import Ridge, RidgeCV
from sklearn.metrics import r2_score
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsRegressor
from sklearn.tree import DecisionTreeRegressor

from skmoe import MixtureOfExpertsRegressor

breaks = np.array([-1.0, 1.0])
slopes = np.array([-2.0, 0.5, 3.0])
noise = 0.3


def true_law(x):
    """The noise-free ``y``: a line, plus a hinge at each break that changes its slope."""
    law = slopes[0] * (x - breaks[0])
    for b, change in zip(breaks, np.diff(slopes), strict=True):
        law = law + change * np.maximum(x - b, 0.0)
    return law


rng = np.random.RandomState(0)
x = rng.uniform(-3, 3, size=800)
y = true_law(x) + noise * rng.standard_normal(x.size)
X = x[:, None]
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)

# %%
# Three models on the same split
# ------------------------------
# The noise sets a ceiling: even the true law cannot explain the noise, so its
# held-out R^2 is the best any model can reach.
models = {
    "mixture of 3 ridge experts": MixtureOfExpertsRegressor(n_experts=3, random_state=0),
    "hist gradient boosting": HistGradientBoostingRegressor(random_state=0),
    "stacking (ridge, tree, knn)": StackingRegressor(
        [
            ("ridge", Ridge()),
            ("tree", DecisionTreeRegressor(max_depth=4, random_state=0)),
            ("knn", KNeighborsRegressor(n_neighbors=10)),
        ],
        final_estimator=RidgeCV(),
    ),
}
print(f"{'model':30s} {'held-out R^2':>12s}")
for name, model in models.items():
    model.fit(X_train, y_train)
    print(f"{name:30s} {model.score(X_test, y_test):12.4f}")
print(f"{'true law (noise ceiling)':30s} {r2_score(y_test, true_law(X_test[:, 0])):12.4f}")

# %%
# In one dimension all three come close to the ceiling, and their scores differ
# little. The curves show the difference in kind: the mixture draws straight
# lines, while boosting draws a staircase and the stack a wiggly curve, both
# following some of the noise. What the mixture adds here is less a score than
# a model one can read: three lines and where each one holds.
grid = np.linspace(-3, 3, 601)[:, None]
fig, ax = plt.subplots(figsize=(8, 4.5))
ax.scatter(X_train[:, 0], y_train, s=6, color="0.7", label="training data")
ax.plot(grid[:, 0], true_law(grid[:, 0]), "k--", lw=1, label="true law")
for name, model in models.items():
    ax.plot(grid[:, 0], model.predict(grid), lw=1.5, label=name)
ax.set_xlabel("x")
ax.set_ylabel("y")
ax.set_title("Predictions of the three models")
ax.legend(loc="upper center")
fig.tight_layout()

# %%
# Inside the mixture: the gate and its experts
# --------------------------------------------
# ``gate_proba`` gives, for each ``x``, the weight of each expert; rows sum to
# 1. Each expert is an ordinary fitted ``Ridge`` in ``estimators_``, and its
# line is drawn only where the gate gives it more than half the weight: away
# from those regions the expert extrapolates lines that the gate never uses.
moe = models["mixture of 3 ridge experts"]
gate = moe.gate_proba(grid)
colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]

fig, (ax_top, ax_gate) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
ax_top.scatter(X_train[:, 0], y_train, s=6, color="0.7")
for k, expert in enumerate(moe.estimators_):
    line = np.where(gate[:, k] > 0.5, expert.predict(grid), np.nan)
    ax_top.plot(grid[:, 0], line, color=colors[k], lw=2.5, label=f"expert {k}")
    ax_gate.plot(grid[:, 0], gate[:, k], color=colors[k], lw=2, label=f"expert {k}")
for ax in (ax_top, ax_gate):
    for b in breaks:
        ax.axvline(b, color="k", ls=":", lw=1)
ax_top.set_ylabel("y")
ax_top.set_title("Each expert's line where its gate probability exceeds 0.5")
ax_top.legend(loc="upper center")
ax_gate.set_ylabel("gate probability")
ax_gate.set_xlabel("x (dotted: the true breakpoints)")
ax_gate.set_ylim(-0.05, 1.05)
fig.tight_layout()

# %%
# The experts' slopes and the gate's switch points, against the truth
# --------------------------------------------------------------------
# The experts come in no particular order, so they are listed by where they
# lead, from left to right. A switch point is where the leading expert
# changes along the grid.
leader = gate.argmax(axis=1)
order = list(dict.fromkeys(leader))  # experts by first appearance from the left
print(f"{'regime':>6s} {'true slope':>10s} {'expert':>6s} {'fitted slope':>12s} {'noise sd':>8s}")
for regime, k in enumerate(order):
    fitted = moe.estimators_[k].coef_[0]
    sd = np.sqrt(moe.noise_variance_[k])
    print(f"{regime:6d} {slopes[regime]:10.2f} {k:6d} {fitted:12.3f} {sd:8.3f}")
switches = grid[1:, 0][np.diff(leader) != 0]
print("true breakpoints:  ", breaks)
print("gate switch points:", np.round(switches, 2))
print(f"true noise sd: {noise}")
print("share of training rows per expert (expert_load_):", np.round(moe.expert_load_, 3))

plt.show()
