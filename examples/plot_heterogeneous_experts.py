"""
Heterogeneous experts: a list of different estimators
=====================================================

The experts of a mixture need not be alike: pass a list of estimators and
each element becomes one expert. Here one half of the input follows a line and
the other a wave, so a mixture of a ridge and a shallow tree is fitted and
compared with each of them alone and with a mixture of two ridges; then the
gate's choice of expert is drawn along the input.
"""

# %%
# Data: a line, then a wave
# -------------------------
# ``y = 2 x`` for ``x < 0`` and ``y = 2 sin(3 x)`` for ``x >= 0``, plus noise.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score
from sklearn.model_selection import train_test_split
from sklearn.tree import DecisionTreeRegressor

from skmoe import MixtureOfExpertsRegressor

noise = 0.2


def true_law(x):
    """The noise-free ``y``."""
    return np.where(x < 0, 2 * x, 2 * np.sin(3 * x))


rng = np.random.RandomState(0)
x = rng.uniform(-3, 3, size=1000)
y = true_law(x) + noise * rng.standard_normal(x.size)
X = x[:, None]
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)

# %%
# One ridge and one tree, against each alone
# ------------------------------------------
# The list ``[Ridge(), DecisionTreeRegressor(...)]`` makes two experts, the
# first a ridge, the second a tree. The mixture of two ridges has the same
# gate but no expert that can bend.
models = {
    "mixture [ridge, tree]": MixtureOfExpertsRegressor(
        [Ridge(), DecisionTreeRegressor(max_depth=4, random_state=0)], random_state=0
    ),
    "ridge alone": Ridge(),
    "tree alone (max_depth=4)": DecisionTreeRegressor(max_depth=4, random_state=0),
    "mixture [ridge, ridge]": MixtureOfExpertsRegressor([Ridge(), Ridge()], random_state=0),
}
print(f"{'model':26s} {'held-out R^2':>12s}")
for name, model in models.items():
    model.fit(X_train, y_train)
    print(f"{name:26s} {model.score(X_test, y_test):12.4f}")
print(f"{'true law (noise ceiling)':26s} {r2_score(y_test, true_law(X_test[:, 0])):12.4f}")

# %%
# A tree of depth 4 has at most 16 leaves, and alone it must spend some of
# them on a staircase for the line. Inside the mixture the ridge takes the
# line, and the tree, fitted with the responsibilities as sample weights, is
# left with the wave. Two ridges cannot follow the wave at all: the best they
# can do is two lines.

# %%
# Which expert the gate picks along x
# -----------------------------------
# ``predict_expert`` returns, per row, the expert with the largest gate
# probability; the names of the experts come from ``estimators_``.
moe = models["mixture [ridge, tree]"]
names = [type(est).__name__ for est in moe.estimators_]
grid = np.linspace(-3, 3, 601)[:, None]
picked = moe.predict_expert(grid)
switches = grid[1:, 0][np.diff(picked) != 0]
print("experts:", names)
print("gate switch points along x:", np.round(switches, 2))
print("share of training rows per expert (expert_load_):", np.round(moe.expert_load_, 3))

test_picked = moe.predict_expert(X_test)
test_left = X_test[:, 0] < 0
for name, rows in [("x < 0", test_left), ("x >= 0", ~test_left)]:
    counts = np.bincount(test_picked[rows], minlength=len(names))
    shares = ", ".join(f"{names[k]} {c / counts.sum():.3f}" for k, c in enumerate(counts))
    print(f"held-out rows with {name}: {shares}")

# %%
# The predictions of the four models (top) and the expert the gate picks
# (bottom). The dotted line marks ``x = 0``, where the law changes.
fig, (ax_pred, ax_pick) = plt.subplots(
    2, 1, figsize=(8, 6.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
)
ax_pred.scatter(X_train[:, 0], y_train, s=5, color="0.7", label="training data")
ax_pred.plot(grid[:, 0], true_law(grid[:, 0]), "k--", lw=1, label="true law")
for name, model in models.items():
    ax_pred.plot(grid[:, 0], model.predict(grid), lw=1.5, label=name)
ax_pred.set_ylabel("y")
ax_pred.set_title("Predictions")
ax_pred.legend(loc="upper left", fontsize="small")

ax_pick.step(grid[:, 0], picked, where="mid", lw=2)
ax_pick.set_yticks(range(len(names)), names)
ax_pick.set_ylim(-0.5, len(names) - 0.5)
ax_pick.set_xlabel("x")
ax_pick.set_title("predict_expert: the expert with the largest gate probability")
for ax in (ax_pred, ax_pick):
    ax.axvline(0, color="k", ls=":", lw=1)
fig.tight_layout()

plt.show()
