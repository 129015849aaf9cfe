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


@pytest.mark.parametrize("estimator", [None, DecisionTreeClassifier(max_depth=3)])
def test_class_weight_is_a_sample_weight_per_class(estimator):
    # the weights multiply the rows' sample_weight: the fit sees the same
    # float64 weights either way, so the fits are the same bit for bit
    X, y = load_wine(return_X_y=True)
    labels = np.array(["a", "b", "c"])[y]
    sample_weight = np.random.RandomState(0).uniform(0.5, 2.0, len(y))
    class_weight = {"a": 3.0, "c": 0.25}  # "b" weighs 1
    params = dict(n_experts=2, random_state=0)
    weighted = MixtureOfExpertsClassifier(estimator, class_weight=class_weight, **params)
    weighted.fit(X, labels, sample_weight=sample_weight)
    per_row = sample_weight * np.array([class_weight.get(c, 1.0) for c in labels])
    plain = MixtureOfExpertsClassifier(estimator, **params).fit(X, labels, sample_weight=per_row)
    np.testing.assert_array_equal(weighted.predict_proba(X), plain.predict_proba(X))
    # "balanced": n_samples / (n_classes * count), as LogisticRegression's
    balanced = MixtureOfExpertsClassifier(estimator, class_weight="balanced", **params)
    balanced.fit(X, labels)
    counts = np.bincount(y)
    per_row = (len(y) / (3 * counts))[y]
    plain = MixtureOfExpertsClassifier(estimator, **params).fit(X, labels, sample_weight=per_row)
    np.testing.assert_array_equal(balanced.predict_proba(X), plain.predict_proba(X))


def test_class_weight_in_partial_fit():
    X, y = load_iris(return_X_y=True)
    order = np.random.RandomState(0).permutation(len(y))
    X, y = X[order], y[order]
    class_weight = {0: 2.0}
    weighted = MixtureOfExpertsClassifier(n_experts=2, class_weight=class_weight, random_state=0)
    plain = MixtureOfExpertsClassifier(n_experts=2, random_state=0)
    for rows in np.array_split(np.arange(len(y)), 3):
        weighted.partial_fit(X[rows], y[rows], classes=[0, 1, 2])
        plain.partial_fit(X[rows], y[rows], classes=[0, 1, 2], sample_weight=1.0 + (y[rows] == 0))
    np.testing.assert_array_equal(weighted.predict_proba(X), plain.predict_proba(X))
    with pytest.raises(ValueError, match="balanced.*partial_fit does not see"):
        MixtureOfExpertsClassifier(class_weight="balanced").partial_fit(X, y, classes=[0, 1, 2])


@pytest.mark.parametrize(
    "class_weight, match",
    [
        ({0: 1.0, 7: 2.0}, r"class_weight names classes not among .*\[7\]"),
        ({0: 0.0, 1: 0.0, 2: 0.0}, "class_weight leaves every row with weight 0"),
        ("even", "class_weight"),
    ],
)
def test_bad_class_weight(class_weight, match):
    X, y = load_iris(return_X_y=True)
    with pytest.raises(ValueError, match=match):
        MixtureOfExpertsClassifier(class_weight=class_weight).fit(X, y)


@pytest.mark.parametrize("estimator", [None, DecisionTreeClassifier(max_depth=2)])
def test_predict_log_proba(estimator):
    X, y = load_iris(return_X_y=True)
    clf = MixtureOfExpertsClassifier(estimator, n_experts=2, random_state=0).fit(X, y)
    log_proba = clf.predict_log_proba(X)
    # the logarithm of the probabilities, -inf where one is 0 (a tree's leaf)
    with np.errstate(divide="ignore"):
        np.testing.assert_array_equal(log_proba, np.log(clf.predict_proba(X)))
    assert log_proba.shape == (len(y), 3)
    np.testing.assert_array_equal(clf.classes_[log_proba.argmax(axis=1)], clf.predict(X))
