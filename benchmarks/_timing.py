"""Timers the benchmark scripts share."""

import time

from skmoe.experts import EstimatorExperts


class ExpertFitTimer:
    """Accumulates the time and number of calls of EstimatorExperts.fit (the K
    expert fits of one M-step, merge-and-split trials included) while installed."""

    def __init__(self):
        self.seconds = 0.0
        self.calls = 0
        self._original = EstimatorExperts.fit

    def __enter__(self):
        timer = self

        def timed(experts, *args, **kwargs):
            start = time.perf_counter()
            try:
                return timer._original(experts, *args, **kwargs)
            finally:
                timer.seconds += time.perf_counter() - start
                timer.calls += 1

        EstimatorExperts.fit = timed
        return self

    def __exit__(self, *exc):
        EstimatorExperts.fit = self._original
