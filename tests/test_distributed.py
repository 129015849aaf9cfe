"""Fitting on a Dask cluster through joblib's "dask" backend.

The experts' fits of each M-step go through ``joblib.Parallel`` (``n_jobs``),
so under ``joblib.parallel_backend("dask")`` they run on the cluster's
workers. Every random seed is drawn in the calling process, before the fits
are sent out, so the cluster's fit is the local one.
"""

import logging
import re

import joblib
import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.tree import DecisionTreeRegressor

from skmoe import MixtureOfExpertsRegressor
from skmoe.datasets import make_regime_regression

distributed = pytest.importorskip("distributed")

# a few EM iterations are enough to compare two fits
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

# joblib names each task it sends to Dask after the function it runs (the
# first one's, "mixed_" if they differ) and the number of calls it batches
_BATCH_KEY = re.compile(r"^(mixed_)?batch_of_(?P<func>.+)_(?P<calls>\d+)_calls-")


@pytest.fixture(scope="module")
def client():
    """Two single-threaded worker processes on this machine, closed after the module."""
    with (
        distributed.LocalCluster(
            n_workers=2,
            processes=True,
            threads_per_worker=1,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def data():
    X, y = make_regime_regression(n_samples=200, random_state=0)
    return X, y


def _mixture(**params):
    return MixtureOfExpertsRegressor(
        DecisionTreeRegressor(max_depth=3), n_experts=3, n_jobs=2, max_iter=5, random_state=0
    ).set_params(**params)


def _joblib_calls(tasks):
    """(worker, function, number of calls) of each joblib batch in a task stream."""
    batches = [(task["worker"], _BATCH_KEY.match(task["key"])) for task in tasks]
    return [(worker, m["func"], int(m["calls"])) for worker, m in batches if m]


def test_fit_on_the_cluster_is_the_local_fit(client, data):
    X, y = data
    local = _mixture().fit(X, y)
    with (
        distributed.get_task_stream(client=client) as stream,
        joblib.parallel_backend("dask"),
    ):
        remote = _mixture().fit(X, y)
    np.testing.assert_allclose(remote.predict(X), local.predict(X))
    np.testing.assert_allclose(remote.gate_proba(X), local.gate_proba(X))
    assert remote.n_iter_ == local.n_iter_
    # every expert fit of every M-step ran on the cluster's workers
    calls = _joblib_calls(stream.data)
    assert {worker for worker, _, _ in calls} <= set(client.scheduler_info()["workers"])
    assert sum(n for _, _, n in calls) >= remote.n_iter_ * len(remote.estimators_)


def test_grid_search_on_the_cluster(client, data):
    X, y = data
    search = GridSearchCV(_mixture(), {"n_experts": [1, 2, 3]}, cv=KFold(3), n_jobs=2)
    local = search.fit(X, y)
    local_best, local_scores = local.best_params_, local.cv_results_["mean_test_score"]
    with (
        distributed.get_task_stream(client=client) as stream,
        joblib.parallel_backend("dask"),
    ):
        remote = GridSearchCV(_mixture(), {"n_experts": [1, 2, 3]}, cv=KFold(3), n_jobs=2).fit(X, y)
    assert remote.best_params_ == local_best
    np.testing.assert_allclose(remote.cv_results_["mean_test_score"], local_scores)
    # the 9 (candidate, fold) fits ran on the workers, and so did the expert
    # fits inside them (joblib's nested backend is the same cluster)
    calls = _joblib_calls(stream.data)
    assert {worker for worker, _, _ in calls} <= set(client.scheduler_info()["workers"])
    assert sum(n for _, func, n in calls if "fit_and_score" in func) == 9
    assert sum(n for _, func, n in calls if "fit_and_score" not in func) > 9
