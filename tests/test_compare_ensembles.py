"""The main job's quick run: every data set and model scored, all three outputs written."""

import importlib.util
import json
import math
import runpy
from pathlib import Path

SCRIPT = Path(__file__).parents[1] / "examples" / "compare_ensembles.py"


def test_quick_run_writes_every_result(tmp_path):
    script = runpy.run_path(str(SCRIPT))  # not "__main__": main() does not run on load
    script["main"](["--quick", "--out", str(tmp_path)])
    suffixes = ["md", "json"] + (["png"] if importlib.util.find_spec("matplotlib") else [])
    for suffix in suffixes:
        assert (tmp_path / f"compare_ensembles.{suffix}").is_file()

    report = json.loads((tmp_path / "compare_ensembles.json").read_text())["datasets"]
    quick_sets = script["load_datasets"](quick=True)
    assert set(report) == set(quick_sets)
    markdown = (tmp_path / "compare_ensembles.md").read_text()
    for name, entry in report.items():
        assert set(entry["models"]) == set(script["MODELS"][entry["task"]])
        for result in entry["models"].values():
            assert len(result["test_scores"]) == 3
            assert all(math.isfinite(score) for score in result["test_scores"])
            # the experts each skmoe fold chose (or was given); none for the others
            assert len(result["n_experts"]) == (3 if result["skmoe"] else 0)
            assert all(k >= 1 for k in result["n_experts"])
        assert f"## {name} (" in markdown
        assert entry["summary"] in markdown
    assert markdown.count("| model |") == len(report)
