"""
Inspecting the gate: which expert answers where, and how often
==============================================================

A fitted mixture of experts can be opened up. ``gate_proba`` gives, for any
row, the weight of each expert; ``predict_expert`` the expert with the largest
weight; ``expert_load_`` and ``expert_importance_`` how much of the training
data each expert took. With two input features the gate can also be drawn over
the plane: :class:`~skmoe.inspection.GateDisplay` colours each point by the
expert the gate picks there (or by one expert's gate probability), and
:class:`~skmoe.inspection.ExpertUsageDisplay` draws each expert's share of the
rows. Here both are applied to data with four linear regimes in two
dimensions, for a dense mixture of four ridge experts and for a sparse one that
routes each row to 2 of 8 experts (``top_k=2``).
"""

# %%
# Data: four linear regimes in the plane
# --------------------------------------
# :func:`~skmoe.datasets.make_regime_regression` draws four random centres; a
# row's regime is its nearest centre, and ``y`` is linear within each regime
# with its own coefficients. ``return_regimes=True`` also returns each row's
# regime, to check below what the gate finds. The regimes are Voronoi cells,
# which a softmax gate can draw exactly. ``center_scale=1.0`` keeps the
# centres close to the data, so that every regime gets a fair share of rows.

import matplotlib.pyplot as plt
import numpy as np
from sklearn.linear_model import Ridge
from sklearn.metrics import adjusted_rand_score
from sklearn.model_selection import train_test_split

from skmoe import MixtureOfExpertsRegressor
from skmoe.datasets import make_regime_regression
from skmoe.inspection import ExpertUsageDisplay, GateDisplay

X, y, regimes = make_regime_regression(
    n_samples=2000, n_features=2, n_regimes=4, center_scale=1.0, random_state=7, return_regimes=True
)
X_train, X_test, y_train, y_test, regimes_train, regimes_test = train_test_split(
    X, y, regimes, test_size=0.25, random_state=0
)
print("rows per regime:", np.bincount(regimes))

# %%
# A dense mixture and a sparse one
# --------------------------------
# The dense mixture has as many experts as there are regimes, and every expert
# answers every row. The sparse one has twice as many experts, and each row is
# answered by its two most probable experts only; in training, each expert is
# fitted on the rows routed to it. A single ridge shows what one linear law
# can do on these data.
#
# With more experts than regimes, an expert can be left with (almost) no rows
# during EM; the fit then restarts it on the rows fitted worst, and counts the
# restarts in ``n_expert_restarts_``.
models = {
    "dense: 4 ridge experts": MixtureOfExpertsRegressor(n_experts=4, random_state=0),
    "sparse: top-2 of 8 ridge experts": MixtureOfExpertsRegressor(
        n_experts=8, top_k=2, random_state=1
    ),
    "single ridge": Ridge(),
}
print(f"{'model':34s} {'held-out R^2':>12s} {'expert restarts':>15s}")
for name, model in models.items():
    model.fit(X_train, y_train)
    restarts = getattr(model, "n_expert_restarts_", "")
    print(f"{name:34s} {model.score(X_test, y_test):12.4f} {restarts:>15}")
dense = models["dense: 4 ridge experts"]
sparse = models["sparse: top-2 of 8 ridge experts"]

# %%
# Gate probabilities
# ------------------
# ``gate_proba(X)`` has one row per sample and one column per expert; each row
# sums to 1. Under the dense gate every expert has some weight, if tiny; under
# ``top_k=2`` all but two entries of each row are exactly 0, and the two that
# remain are renormalised.
with np.printoptions(precision=3, suppress=True):
    print("dense gate_proba, first 4 held-out rows:")
    print(dense.gate_proba(X_test[:4]))
    print("sparse gate_proba, first 4 held-out rows:")
    print(sparse.gate_proba(X_test[:4]))
n_weighted = (sparse.gate_proba(X_test) > 0).sum(axis=1)
print("experts with weight > 0 per held-out row (sparse):", np.unique(n_weighted))

# %%
# The most probable expert against the true regime
# ------------------------------------------------
# ``predict_expert(X)`` takes the argmax of each row of ``gate_proba(X)``. The
# experts come in no particular order, so the table counts held-out rows by
# true regime and chosen expert: a gate that found the regimes has one large
# count per row of the table. The adjusted Rand index, which ignores the
# labels' order, is 1 for a perfect match and about 0 for a random one.
# It is a strict measure: a row near a border that goes to the neighbouring
# regime's expert counts as a miss, even where the two experts predict alike.
chosen = dense.predict_expert(X_test)
table = np.zeros((4, dense.n_experts), dtype=int)
np.add.at(table, (regimes_test, chosen), 1)
print("rows: true regime; columns: expert chosen by the dense gate")
print(table)
for name, model in [("dense", dense), ("sparse", sparse)]:
    ari = adjusted_rand_score(regimes_test, model.predict_expert(X_test))
    print(f"{name:6s} adjusted Rand index, regimes vs predict_expert: {ari:.3f}")

# %%
# Each regime goes mostly to one expert of the dense gate. The sparse gate has
# twice as many experts as there are regimes, yet its choices match the
# regimes at least as well here: only four of its experts lead over many
# rows, as the pictures below show.

# %%
# The gate over the plane
# -----------------------
# :meth:`GateDisplay.from_estimator <skmoe.inspection.GateDisplay.from_estimator>`
# evaluates ``predict_expert`` on a grid spanning ``X`` and colours each point
# by the expert chosen there. The held-out rows are drawn on top, with one
# marker per true regime: where the colour changes, the marker should too.
fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
markers = ["o", "s", "^", "D"]
for ax, (name, model) in zip(axes, [("dense", dense), ("sparse", sparse)], strict=True):
    GateDisplay.from_estimator(model, X_train, grid_resolution=150, ax=ax)
    for regime, marker in enumerate(markers):
        rows = regimes_test == regime
        ax.scatter(
            X_test[rows, 0],
            X_test[rows, 1],
            s=10,
            marker=marker,
            facecolors="none",
            edgecolors="k",
            linewidths=0.6,
            label=f"regime {regime}",
        )
    ax.set_title(f"{name}: most probable expert")
axes[0].legend(loc="lower left", fontsize="small")
fig.tight_layout()

# %%
# One expert's gate probability
# -----------------------------
# ``response="proba"`` shows the gate probability of one expert instead. The
# transition from 0 to 1 is sharp: the gate is nearly certain everywhere but
# on the borders between regimes, where two experts share the weight.
top_expert = int(np.argmax(dense.expert_load_))
disp = GateDisplay.from_estimator(dense, X_train, response="proba", expert=top_expert)
disp.ax_.scatter(X_test[:, 0], X_test[:, 1], s=4, color="k", alpha=0.3)
disp.ax_.set_title(f"dense: gate probability of expert {top_expert}")
disp.figure_.tight_layout()

# %%
# Expert usage: load and importance
# ---------------------------------
# ``expert_load_`` is each expert's share of the training rows routed to it
# (under a dense gate, a row goes to its most probable expert; under
# ``top_k``, it counts ``1 / top_k`` towards each of its experts), and
# ``expert_importance_`` its share of the gate probability mass. Both sum to
# 1. For the dense mixture the two nearly agree, because the gate is nearly
# certain almost everywhere, and they are close to the regimes' shares of the
# rows (in some order). An expert with a load near 0 would be idle.
with np.printoptions(precision=3, suppress=True):
    print("share of training rows per regime:", np.bincount(regimes_train) / y_train.size)
    for name, model in [("dense", dense), ("sparse", sparse)]:
        print(f"{name:6s} expert_load_:       {model.expert_load_}")
        print(f"{name:6s} expert_importance_: {model.expert_importance_}")

# %%
# :meth:`ExpertUsageDisplay.from_estimator
# <skmoe.inspection.ExpertUsageDisplay.from_estimator>` draws the two side by
# side for each expert. Under ``top_k=2`` they part: every row counts ``1 / 2``
# towards each of its two experts however small the weight of the second, so
# an expert that is often the runner-up takes load but little importance.
# Such experts are chosen but barely heard: the gate relies on about as many
# experts as there are regimes.
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
ExpertUsageDisplay.from_estimator(dense, ax=axes[0])
ExpertUsageDisplay.from_estimator(sparse, ax=axes[1])
axes[0].set_title("dense: 4 experts")
axes[1].set_title("sparse: top-2 of 8 experts")
fig.tight_layout()

plt.show()
