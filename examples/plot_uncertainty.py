"""
Predictive uncertainty with return_std
======================================

Each expert of a :class:`~skmoe.MixtureOfExpertsRegressor` has its own noise
variance, so the mixture's predictive spread can change with the input. Here
the data have two regimes, one quiet and one noisy, and
``predict(X, return_std=True)`` gives a band that is narrow where the data are
quiet and wide where they are noisy. A band of one width for all inputs, around
the same mean, is shown for comparison.
"""

# %%
# Data: a quiet regime and a noisy one
# ------------------------------------
# For ``x < 0`` the slope is ``slope_left`` and the noise standard deviation
# ``sd_left``; for ``x >= 0``, ``slope_right`` and ``sd_right``.
import math

import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import train_test_split

from skmoe import MixtureOfExpertsRegressor

slope_left, sd_left = -1.0, 0.1
slope_right, sd_right = 2.0, 1.0

rng = np.random.RandomState(0)
x = rng.uniform(-3, 3, size=2000)
left = x < 0
y = np.where(left, slope_left * x, slope_right * x)
y = y + np.where(left, sd_left, sd_right) * rng.standard_normal(x.size)
X = x[:, None]
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.5, random_state=0)

# %%
# Fit, and read each expert's noise variance
# ------------------------------------------
# The experts come in no particular order; each regime is matched to the
# expert that the gate picks for most of its held-out rows.
reg = MixtureOfExpertsRegressor(n_experts=2, random_state=0).fit(X_train, y_train)
print(f"held-out R^2: {reg.score(X_test, y_test):.4f}")
print(f"EM: {reg.n_iter_} iterations, converged={reg.converged_}")

test_left = X_test[:, 0] < 0
regimes = {"x < 0": (test_left, sd_left**2), "x >= 0": (~test_left, sd_right**2)}
print(f"{'regime':>7s} {'expert':>6s} {'true noise variance':>19s} {'noise_variance_':>15s}")
for name, (rows, true_var) in regimes.items():
    k = np.bincount(reg.predict_expert(X_test[rows]), minlength=reg.n_experts).argmax()
    print(f"{name:>7s} {k:6d} {true_var:19.4f} {reg.noise_variance_[k]:15.4f}")

# %%
# Coverage of the ±2 std band on held-out data
# --------------------------------------------
# If the predictive distribution were exactly Gaussian with the right spread,
# a share ``erf(2 / sqrt(2))`` of the rows would fall within two standard
# deviations of the mean, in each regime. The comparison band has the same
# mean but a single width: the root mean squared residual of the training
# rows, as a model with one noise level for all inputs would estimate it.
mean_test, std_test = reg.predict(X_test, return_std=True)
sd_constant = np.sqrt(np.mean((y_train - reg.predict(X_train)) ** 2))
inside_moe = np.abs(y_test - mean_test) <= 2 * std_test
inside_constant = np.abs(y_test - mean_test) <= 2 * sd_constant
nominal = math.erf(2 / math.sqrt(2))
print(f"nominal coverage of ±2 sd for a Gaussian: {nominal:.3f}")
print(f"single band width: 2 x {sd_constant:.3f}")
print(f"{'rows':>7s} {'n':>5s} {'mixture band':>12s} {'single band':>11s}")
row_sets = {"all": np.ones(y_test.size, dtype=bool), "x < 0": test_left, "x >= 0": ~test_left}
for name, rows in row_sets.items():
    coverage_moe, coverage_constant = inside_moe[rows].mean(), inside_constant[rows].mean()
    print(f"{name:>7s} {rows.sum():5d} {coverage_moe:12.3f} {coverage_constant:11.3f}")

# %%
# The mixture's band covers about the nominal share in each regime; it falls a
# little short on the noisy side, where the fitted noise variance is a little
# under the true one (table above). The single band gets neither regime right:
# it is far too wide for the quiet one and too narrow for the noisy one.

# %%
# The bands, and the predicted spread against the true one
# --------------------------------------------------------
# ``return_std`` adds the experts' disagreement to their noise, weighted by
# the gate; around ``x = 0``, where the gate hands over from one expert to the
# other, the spread moves between the two experts' levels.
grid = np.linspace(-3, 3, 601)[:, None]
mean, std = reg.predict(grid, return_std=True)
true_sd = np.where(grid[:, 0] < 0, sd_left, sd_right)

fig, (ax_band, ax_std) = plt.subplots(2, 1, figsize=(8, 7), sharex=True)
ax_band.scatter(X_test[:, 0], y_test, s=5, color="0.6", label="held-out data")
ax_band.fill_between(grid[:, 0], mean - 2 * std, mean + 2 * std, alpha=0.3, label="mean ± 2 std")
ax_band.plot(grid[:, 0], mean, lw=2, label="mixture mean")
for sign in (-1, 1):
    ax_band.plot(
        grid[:, 0],
        mean + sign * 2 * sd_constant,
        "k--",
        lw=1,
        label="single band" if sign == 1 else None,
    )
ax_band.set_ylabel("y")
ax_band.set_title("Mixture band (shaded) and a band of one width (dashed)")
ax_band.legend(loc="upper left")

ax_std.plot(grid[:, 0], std, lw=2, label="predicted std (return_std)")
ax_std.plot(grid[:, 0], true_sd, "k:", lw=1.5, label="true noise sd")
ax_std.axhline(sd_constant, color="k", ls="--", lw=1, label="single band's sd")
ax_std.set_xlabel("x")
ax_std.set_ylabel("standard deviation")
ax_std.legend(loc="upper left")
fig.tight_layout()

plt.show()
