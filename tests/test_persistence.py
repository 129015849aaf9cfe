"""Saved and loaded models predict as before; another version of skmoe warns."""

import io
import pickle
import warnings

import joblib
import numpy as np
import pytest
from sklearn.tree import DecisionTreeRegressor

import skmoe._base
from skmoe import MixtureOfExpertsClassifier, MixtureOfExpertsRegressor
from skmoe.exceptions import InconsistentVersionWarning

MODELS = {
    "linear": MixtureOfExpertsRegressor(n_experts=3, random_state=0),
    "top-k": MixtureOfExpertsRegressor(n_experts=4, top_k=2, random_state=0),
    "trees": MixtureOfExpertsRegressor([DecisionTreeRegressor(max_depth=3)] * 2, random_state=0),
    "hierarchy": MixtureOfExpertsRegressor(n_experts=(2, 2), random_state=0),
    "classifier": MixtureOfExpertsClassifier(n_experts=2, random_state=0),
}


@pytest.fixture(scope="module", params=list(MODELS))
def fitted(request, regime_data):
    X, y, X_test, _ = regime_data
    model = MODELS[request.param]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # expert restarts
        model.fit(X, y > np.median(y) if request.param == "classifier" else y)
    return model, X_test


def _joblib_round_trip(model):
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    buffer.seek(0)
    return joblib.load(buffer)


def _skops_round_trip(model):
    sio = pytest.importorskip("skops.io")
    data = sio.dumps(model)
    untrusted = sio.get_untrusted_types(data=data)
    # only skmoe's and scikit-learn's own types need trusting
    assert all(name.startswith(("skmoe.", "sklearn.")) for name in untrusted)
    return sio.loads(data, trusted=untrusted)


@pytest.mark.parametrize(
    "round_trip",
    [lambda m: pickle.loads(pickle.dumps(m)), _joblib_round_trip, _skops_round_trip],
    ids=["pickle", "joblib", "skops"],
)
def test_a_loaded_model_predicts_identically(fitted, round_trip):
    model, X_test = fitted
    with warnings.catch_warnings():
        warnings.simplefilter("error", InconsistentVersionWarning)  # same version: silent
        loaded = round_trip(model)
    np.testing.assert_array_equal(loaded.predict(X_test), model.predict(X_test))
    np.testing.assert_array_equal(loaded.gate_proba(X_test), model.gate_proba(X_test))


def test_a_model_saved_by_another_version_warns(regime_data, monkeypatch):
    X, y, X_test, _ = regime_data
    model = MixtureOfExpertsRegressor(n_experts=2, random_state=0).fit(X, y)
    with monkeypatch.context() as patch:
        patch.setattr(skmoe._base, "__version__", "0.0.1")
        saved = pickle.dumps(model)
    with pytest.warns(InconsistentVersionWarning, match=r"skmoe 0\.0\.1 with skmoe") as record:
        loaded = pickle.loads(saved)
    assert record[0].message.original_version == "0.0.1"
    np.testing.assert_array_equal(loaded.predict(X_test), model.predict(X_test))
