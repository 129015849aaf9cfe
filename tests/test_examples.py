"""Run the gallery examples end to end (the comparison has its own quick test)."""

import importlib.util
import runpy
from pathlib import Path

import pytest

EXAMPLES = sorted(
    path
    for path in (Path(__file__).parents[1] / "examples").glob("*.py")
    if path.name != "compare_ensembles.py"
)


@pytest.mark.parametrize("path", EXAMPLES, ids=[path.name for path in EXAMPLES])
def test_example_runs(path):
    if importlib.util.find_spec("matplotlib") is not None:
        import matplotlib

        matplotlib.use("Agg")  # no display needed
    runpy.run_path(str(path), run_name="__main__")
