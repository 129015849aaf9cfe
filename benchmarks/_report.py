"""Shared output of the benchmark scripts: print the table, write JSON and markdown."""

import json


def write_report(out, name, result, markdown):
    """Print ``markdown`` and write ``out/name.json`` and ``out/name.md``."""
    print(markdown)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(result, indent=2))
    (out / f"{name}.md").write_text(markdown)
