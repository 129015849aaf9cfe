"""EM's stopping rule (skmoe._solvers.em._Progress.settled): the last gain
under tol and Aitken's estimate of what remains under it too."""

from types import SimpleNamespace

import numpy as np
import pytest

from skmoe._solvers.em import _Progress, _remaining

TOL = 1e-3


def _progress(builtin=True):
    plan = SimpleNamespace(builtin=builtin, tol=TOL, n_iter_no_change=10)
    em = SimpleNamespace(plan=plan, printer=None, likelihood=None, validation=None)
    return _Progress(em)


def _first_stop(gains):
    """The 1-based index of the step at which EM stops, given its gains."""
    progress, objective = _progress(), 0.0
    for i, gain in enumerate(gains, start=1):
        if progress.settled(objective + gain, objective):
            return i
        objective += gain
    return None


def test_gains_that_shrink_slowly_do_not_stop_em_at_the_first_small_one():
    # ratio 0.9: the first gain under tol leaves nine times it to come
    gains = 2e-3 * 0.9 ** np.arange(200)
    stop = _first_stop(gains)
    first_small = int(np.argmax(gains < TOL)) + 1
    assert stop > first_small
    # at the first step after which what remains (the later gains' sum,
    # which Aitken's estimate gives exactly here) is under tol
    assert gains[stop:].sum() < TOL <= gains[stop - 1 :].sum()


def test_gains_that_shrink_fast_stop_em_at_the_first_small_one():
    gains = 8e-3 * 0.25 ** np.arange(10)
    assert _first_stop(gains) == int(np.argmax(gains < TOL)) + 1


def test_gains_that_do_not_shrink_never_stop_em():
    assert _first_stop(np.full(50, 0.9 * TOL)) is None
    assert _first_stop(0.5 * TOL * 1.01 ** np.arange(50)) is None


@pytest.mark.parametrize(
    "gain, last, expected",
    [
        (0.5, 1.0, 0.5),  # r = 1/2: as much again
        (0.9, 1.0, 0.9 * 9),
        (1.0, 1.0, np.inf),
        (1.0, None, np.inf),  # one gain alone foretells nothing
        (-1e-12, 1.0, 0.0),  # a fall, of rounding
        (1e-9, -1e-12, 0.0),
    ],
)
def test_aitken_estimate_of_what_remains(gain, last, expected):
    assert _remaining(gain, last) == pytest.approx(expected)


def test_a_restart_forgets_the_last_gain():
    progress = _progress()
    assert not progress.settled(1e-2, 0.0)
    progress.restarted()
    # 1e-4 after 1e-2 would stop EM; after a restart one gain alone does not
    assert not progress.settled(1e-2 + 1e-4, 1e-2)
