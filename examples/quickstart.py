"""
Quickstart: a mixture of experts against scikit-learn's ensembles
=================================================================

Data whose law changes from one region of the input to another is what a
mixture of experts is built for: a gate learns the regions, one expert learns
the law of each. Here ``y`` is linear within each of four regimes (the cells
of four random centres), and the regimes have different slopes.
"""

# %%
# Data: four linear regimes
# -------------------------
import time

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor, StackingRegressor
from sklearn.linear_model import LogisticRegression, Ridge, RidgeCV
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsRegressor
from sklearn.tree import DecisionTreeRegressor

from skmoe import MixtureOfExpertsClassifier, MixtureOfExpertsRegressor
from skmoe.datasets import make_regime_regression

X, y = make_regime_regression(n_samples=20000, n_features=8, n_regimes=4, random_state=0)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)

# %%
# The mixture and its peers, fitted side by side
# ----------------------------------------------
models = {
    "mixture of 4 ridge experts": MixtureOfExpertsRegressor(n_experts=4, random_state=0),
    "ridge": Ridge(),
    "hist gradient boosting": HistGradientBoostingRegressor(random_state=0),
    "stacking (ridge, tree, knn)": StackingRegressor(
        [
            ("ridge", Ridge()),
            ("tree", DecisionTreeRegressor(max_depth=8, random_state=0)),
            ("knn", KNeighborsRegressor(n_neighbors=10)),
        ],
        final_estimator=RidgeCV(),
    ),
}
print(f"{'model':30s} {'held-out R^2':>12s} {'fit (s)':>8s}")
for name, model in models.items():
    start = time.perf_counter()
    model.fit(X_train, y_train)
    elapsed = time.perf_counter() - start
    print(f"{name:30s} {model.score(X_test, y_test):12.4f} {elapsed:8.2f}")

# %%
# What the mixture learnt
# -----------------------
# The gate gives each row's weights over the experts (rows sum to 1), and
# ``predict(return_std=True)`` the spread of the predictive mixture.
reg = models["mixture of 4 ridge experts"]
gate = reg.gate_proba(X_test[:5])
mean, std = reg.predict(X_test[:5], return_std=True)
print("gate rows:\n", np.round(gate, 3))
print("most responsible expert:", reg.predict_expert(X_test[:5]))
print("prediction:", np.round(mean, 2), "+-", np.round(std, 2))
print("noise sd per expert:", np.round(np.sqrt(reg.noise_variance_), 3))
print(f"EM: {reg.n_iter_} iterations, converged={reg.converged_}")

# %%
# Classification works the same way
# ---------------------------------
# Here the label is whether ``y`` lies above its median: a linear boundary
# within each regime, a different one in each.
threshold = np.median(y_train)
clf = MixtureOfExpertsClassifier(LogisticRegression(), n_experts=4, random_state=0)
clf.fit(X_train, y_train > threshold)
single = LogisticRegression().fit(X_train, y_train > threshold)
print("mixture accuracy: ", round(clf.score(X_test, y_test > threshold), 4))
print("logistic accuracy:", round(single.score(X_test, y_test > threshold), 4))
