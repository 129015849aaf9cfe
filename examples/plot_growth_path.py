"""
How the default mixture chooses its number of experts
=====================================================

With ``n_experts="auto"`` (the default) the fit starts from one expert, the
single model, and splits the expert that fits its rows worst; the larger
mixture is kept if its BIC is lower. After a split that does not pay it tries
one size more, then stops at the best size seen. ``growth_path_`` records
each size tried. Here, on data with five linear regimes, the path is drawn
next to the BIC of mixtures fitted at each K from scratch.
"""

# %%
# Fit the default
# ---------------
import matplotlib.pyplot as plt
import numpy as np

from skmoe import MixtureOfExpertsRegressor
from skmoe.datasets import make_regime_regression

X, y = make_regime_regression(n_samples=4000, n_features=6, n_regimes=5, random_state=0)
model = MixtureOfExpertsRegressor(random_state=0).fit(X, y)
path = model.growth_path_
print("experts chosen:", model.n_experts_)
for k, bic, kept in zip(path["n_experts"], path["bic"], path["kept"], strict=True):
    print(f"K={k:2d}  BIC={bic:10.1f}  {'kept' if kept else 'rejected'}")

# %%
# The path against fits at each K
# -------------------------------
# Each fit at a fixed K starts from k-means; the growth starts each size from
# the last one's experts. Both find the BIC fall steeply up to the number of
# regimes and rise after it, when a split only adds parameters.
sizes = np.arange(1, path["n_experts"].max() + 1)
scan = [
    MixtureOfExpertsRegressor(n_experts=int(k), random_state=0).fit(X, y).bic(X, y) for k in sizes
]
fig, ax = plt.subplots(figsize=(6, 4))
ax.plot(sizes, scan, "o-", color="0.6", label="fitted at each K (k-means start)")
kept = path["kept"]
ax.plot(path["n_experts"][kept], path["bic"][kept], "s", color="C0", ms=9, label="growth: kept")
ax.plot(
    path["n_experts"][~kept],
    path["bic"][~kept],
    "x",
    color="C3",
    ms=10,
    mew=2,
    label="growth: rejected",
)
ax.axvline(model.n_experts_, color="C0", ls=":", label=f"chosen K = {model.n_experts_}")
ax.set(
    xlabel="number of experts K",
    ylabel="BIC (lower is better)",
    title="n_experts='auto' on 5 regimes",
)
ax.legend()
fig.tight_layout()
plt.show()
