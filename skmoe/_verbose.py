"""Progress printed while fitting, as :mod:`sklearn.mixture` prints it.

``verbose=1`` prints each initialisation, each merge-and-split move and every
``verbose_interval``-th iteration; 2 adds times and the objective.
Iterations are counted across the moves of an initialisation.
"""

from time import time


class Printer:
    """The printer of one fit; ``iterations`` counts those of the current
    initialisation."""

    def __init__(self, verbose, verbose_interval, min_expert_load):
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.min_expert_load = min_expert_load
        self.iterations = 0

    def init_start(self, init):
        self.iterations = 0
        if self.verbose:
            print(f"Initialization {init}")
            self._init_prev_time = self._iter_prev_time = time()

    def iter_end(self, lower_bound, change):
        self.iterations += 1
        if self.verbose and self.iterations % self.verbose_interval == 0:
            if self.verbose == 1:
                print(f"  Iteration {self.iterations}")
            else:
                now = time()
                print(
                    f"  Iteration {self.iterations}\t time lapse {now - self._iter_prev_time:.5f}s"
                    f"\t log-likelihood {lower_bound:.5f}\t change {change:.5f}"
                )
                self._iter_prev_time = now

    def restarts(self, experts):
        if self.verbose and len(experts):
            print(
                f"  Restart at iteration {self.iterations}: experts "
                f"{list(map(int, experts))} (load under {self.min_expert_load}) take the "
                "worst-fitted rows"
            )

    def move_start(self, description):
        if self.verbose:
            print(f"  Move at iteration {self.iterations}: {description}")
            self._move_prev_time = time()

    def move_end(self, kept, lower_bound, previous):
        if self.verbose:
            print(
                f"  Move {'kept' if kept else 'rejected'}. time lapse "
                f"{time() - self._move_prev_time:.5f}s\t lower bound {lower_bound:.5f} "
                f"(before the move {previous:.5f})."
            )

    def init_end(self, lower_bound, converged):
        if self.verbose:
            status = "converged" if converged else "did not converge"
            elapsed = time() - self._init_prev_time
            print(
                f"Initialization {status}. time lapse {elapsed:.5f}s\t "
                f"lower bound {lower_bound:.5f}."
            )
