"""Timers the benchmark scripts share."""

import time

from skmoe.experts import EstimatorExperts


class MethodTimer:
    """Accumulates the time and number of calls of ``owner.name`` while
    installed (a context manager)."""

    def __init__(self, owner, name):
        self.seconds = 0.0
        self.calls = 0
        self._owner, self._name = owner, name
        self._original = getattr(owner, name)

    def __enter__(self):
        timer = self

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return timer._original(*args, **kwargs)
            finally:
                timer.seconds += time.perf_counter() - start
                timer.calls += 1

        setattr(self._owner, self._name, timed)
        return self

    def __exit__(self, *exc):
        setattr(self._owner, self._name, self._original)


class DeviceTimer(MethodTimer):
    """A MethodTimer that waits for the device before reading the clock, and
    keeps each call's seconds (``each``)."""

    def __enter__(self):
        import cupy as cp  # only the GPU benchmarks use it

        timer, self.each = self, []

        def timed(*args, **kwargs):
            cp.cuda.Device().synchronize()
            start = time.perf_counter()
            try:
                return timer._original(*args, **kwargs)
            finally:
                cp.cuda.Device().synchronize()
                timer.each.append(time.perf_counter() - start)
                timer.seconds += timer.each[-1]
                timer.calls += 1

        setattr(self._owner, self._name, timed)
        return self


class ExpertFitTimer(MethodTimer):
    """Time and calls of EstimatorExperts.fit: the K expert fits of one
    M-step, merge-and-split trials included."""

    def __init__(self):
        super().__init__(EstimatorExperts, "fit")
