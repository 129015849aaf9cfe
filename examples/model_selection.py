"""
Choosing the number of experts: BIC or cross-validation
=======================================================

A mixture needs a number of experts, K. Too few and regimes get merged; too
many and experts split a regime or sit idle. Two ways to choose K are shown
here on data with four regimes: the Bayesian information criterion (BIC) of
fits on the training data alone, and a grid search that scores held-out
predictions, which can tune sparse routing (``top_k``) at the same time.
The default, ``n_experts="auto"``, makes the BIC choice itself by growing the
mixture one split at a time (see the example on the growth path).
"""

# %%
# Data: four linear regimes
# -------------------------
# A train/test split: the test part is used only to check the choices made.

import numpy as np
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from skmoe import MixtureOfExpertsRegressor
from skmoe.datasets import make_regime_regression

X, y = make_regime_regression(n_samples=5000, n_features=8, n_regimes=4, random_state=0)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)

# Mostly where there are more experts than regimes, an expert can be left with
# (almost) no rows: the fit restarts it on the rows fitted worst. That is
# expected when trying too many experts; the BIC table below counts the
# restarts.

# %%
# 1. By BIC
# ---------
# ``BIC = -2 log L + p log n``: the likelihood term falls as experts are added,
# the penalty grows with the number of parameters ``p``. Because the penalty
# stands in for held-out data, BIC is computed on the training rows; the
# held-out R^2 column is there only to check the choice. AIC charges 2 per
# parameter instead of ``log n``, less here, so it never picks fewer experts
# than BIC does.
ks = range(1, 9)
bics, aics, r2s = [], [], []
print(f"{'K':>2s} {'BIC':>10s} {'AIC':>10s} {'held-out R^2':>12s} {'restarts':>8s}")
for k in ks:
    model = MixtureOfExpertsRegressor(n_experts=k, random_state=0).fit(X_train, y_train)
    bics.append(model.bic(X_train, y_train))
    aics.append(model.aic(X_train, y_train))
    r2s.append(model.score(X_test, y_test))
    print(f"{k:2d} {bics[-1]:10.1f} {aics[-1]:10.1f} {r2s[-1]:12.4f} {model.n_expert_restarts_:8d}")
k_bic = ks[int(np.argmin(bics))]
k_aic = ks[int(np.argmin(aics))]
print("K with the lowest BIC:", k_bic)
print("K with the lowest AIC:", k_aic)

# %%
# 2. By cross-validation
# ----------------------
# Grid search measures what one usually wants, prediction on unseen rows,
# at the cost of one fit per candidate and fold. It can also choose ``top_k``:
# sparse routing does not change the number of parameters, so BIC would
# compare those fits on their training likelihood alone. Inside a pipeline a
# step's parameters are named ``<step>__<parameter>``.
pipe = Pipeline([("scale", StandardScaler()), ("moe", MixtureOfExpertsRegressor(random_state=0))])
param_grid = {"moe__n_experts": [2, 4, 8], "moe__top_k": [None, 1, 2]}
search = GridSearchCV(pipe, param_grid, scoring="r2", cv=3).fit(X_train, y_train)
print("best parameters:", search.best_params_)
print(f"best CV R^2:   {search.best_score_:.4f}")
print(f"held-out R^2:  {search.score(X_test, y_test):.4f}")

# %%
# Mean CV R^2 (and its standard deviation over the folds) per cell of the
# grid. ``top_k=2`` of 2 experts routes every row to both, which is the dense
# mixture, so it repeats ``top_k=None``. Where neighbouring cells differ by
# less than their standard deviations, the grid's winner is not much better.
results = search.cv_results_
cells = {
    (params["moe__n_experts"], params["moe__top_k"]): (mean, std)
    for params, mean, std in zip(
        results["params"], results["mean_test_score"], results["std_test_score"], strict=True
    )
}
top_ks = param_grid["moe__top_k"]
print("K \\ top_k " + "".join(f"{str(t):>20s}" for t in top_ks))
for k in param_grid["moe__n_experts"]:
    row = "".join(f"{cells[k, t][0]:10.4f} +- {cells[k, t][1]:.4f}" for t in top_ks)
    print(f"{k:9d} {row}")

# %%
# The two choices side by side
# ----------------------------
# The BIC fits have no scaler in front, so their held-out R^2 compares with
# the grid search's only roughly.
k_cv = search.best_params_["moe__n_experts"]
top_k_cv = search.best_params_["moe__top_k"]
print(f"{'method':20s} {'n_experts':>9s} {'top_k':>6s} {'held-out R^2':>12s}")
print(f"{'BIC':20s} {k_bic:9d} {'None':>6s} {r2s[ks.index(k_bic)]:12.4f}")
r2_cv = search.score(X_test, y_test)
print(f"{'grid search (3-fold)':20s} {k_cv:9d} {str(top_k_cv):>6s} {r2_cv:12.4f}")
print("same number of experts:", k_bic == k_cv)
