"""scikit-learn's own estimator checks, in several expert configurations.

None is expected to fail. The sample-weight checks hold bit for bit: a fit
sees each distinct row once with its copies' summed weight (see
:mod:`skmoe._rows`), so integer weights and repeated rows give it the same
arrays, whatever the experts (trees with tied splits, Adam's path, L-BFGS).
"""

from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.naive_bayes import GaussianNB
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
from sklearn.utils.estimator_checks import parametrize_with_checks

from skmoe import MixtureOfExpertsClassifier, MixtureOfExpertsRegressor

ESTIMATORS = [
    MixtureOfExpertsRegressor(),
    MixtureOfExpertsClassifier(),
    MixtureOfExpertsRegressor(DecisionTreeRegressor(max_depth=3)),
    MixtureOfExpertsClassifier(DecisionTreeClassifier(max_depth=3)),
    MixtureOfExpertsRegressor([Ridge(), DecisionTreeRegressor(max_depth=3)]),
    MixtureOfExpertsClassifier([LogisticRegression(), GaussianNB()]),
    MixtureOfExpertsRegressor(top_k=2),
    MixtureOfExpertsClassifier(DecisionTreeClassifier(max_depth=3), top_k=2),
    MixtureOfExpertsRegressor(n_experts=(2, 2)),
    MixtureOfExpertsRegressor(solver="gradient"),
    MixtureOfExpertsClassifier(solver="gradient", expert_hidden_units=8),
    MixtureOfExpertsRegressor(
        DecisionTreeRegressor(max_depth=3), solver="gradient", top_k=2, gate_noise=True
    ),
]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible(estimator, check):
    check(estimator)
