import numpy as np
import pytest
from _bounds import gradient_floor, logistic_proba_bound, scaled_gradient
from sklearn.datasets import load_breast_cancer, load_digits, load_iris, load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from skmoe import MixtureOfExpertsClassifier


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("builtin", [True, False])
def test_one_expert_is_its_logistic_regression(rng, n_classes, builtin):
    X = rng.normal(size=(300, 4))
    y = (X @ rng.normal(size=(4, n_classes))).argmax(axis=1)
    sample_weight = rng.uniform(0.5, 2.0, size=300)
    logreg = LogisticRegression(C=0.5, tol=1e-12, max_iter=10_000)
    estimator = None if builtin else logreg
    clf = MixtureOfExpertsClassifier(estimator, n_experts=1, expert_alpha=2.0)
    clf.fit(X, y, sample_weight=sample_weight)
    logreg.fit(X, y, sample_weight=sample_weight)
    # each solver stops near the one minimiser, as near as its gradient says;
    # the built-in expert's L-BFGS at tol=1e-8, or where rounding stops it
    targets = sample_weight[:, None] * (y[:, None] == np.arange(n_classes))
    expert = clf.estimators_[0]
    if builtin:
        solution = (X, targets, 2.0, expert.coef_, expert.intercept_)
        assert scaled_gradient(*solution) <= max(1e-8, gradient_floor(*solution))
    bound = sum(
        logistic_proba_bound(X, targets, 2.0, model.coef_, model.intercept_)
        for model in (expert, logreg)
    )
    np.testing.assert_allclose(clf.predict_proba(X), logreg.predict_proba(X), rtol=0, atol=bound)


def test_string_labels_and_proba():
    X, y = load_iris(return_X_y=True)
    labels = np.array(["setosa", "versicolor", "virginica"])[y]
    clf = MixtureOfExpertsClassifier(n_experts=2, random_state=0).fit(X, labels)
    np.testing.assert_array_equal(clf.classes_, labels[[0, 50, 100]])
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[proba.argmax(axis=1)])
    assert clf.score(X, labels) > 0.95


def test_experts_that_saw_some_classes_are_aligned():
    # three classes in three separate regions: each tree expert sees only a few
    X, y = load_iris(return_X_y=True)
    clf = MixtureOfExpertsClassifier(
        DecisionTreeClassifier(max_depth=2), n_experts=3, random_state=0
    ).fit(X, y)
    proba = clf.predict_proba(X)
    assert proba.shape == (150, 3)
    assert np.all(np.isfinite(proba))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert clf.score(X, y) > 0.9


@pytest.mark.parametrize("loader", [load_breast_cancer, load_wine, load_digits])
def test_cv_accuracy_within_one_std_of_logistic_regression(loader):
    X, y = loader(return_X_y=True)
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    reference = cross_val_score(
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)), X, y, cv=cv
    )
    mixture = cross_val_score(
        make_pipeline(StandardScaler(), MixtureOfExpertsClassifier(random_state=0)), X, y, cv=cv
    )
    assert mixture.mean() >= reference.mean() - reference.std()
