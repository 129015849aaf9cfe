"""The solvers: EM (batch and online), gradient training and their start.

Each takes the fit plan (:mod:`skmoe._plan`), the experts' likelihood
(:mod:`skmoe._likelihood`) and a verbose printer, and returns a
:class:`~skmoe._solvers.result.FitResult`; none reads the estimator.
"""
