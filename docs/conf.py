"""Sphinx configuration: pydata theme, numpydoc API pages, sphinx-gallery."""

import os
import re
import sys
from pathlib import Path

import skmoe

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MPLBACKEND", "Agg")  # the gallery draws headless

project = "skmoe"
author = "The skmoe developers"
copyright = "The skmoe developers"
release = version = skmoe.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py"]
myst_heading_anchors = 3

templates_path = ["_templates"]
autosummary_generate = True
# no "inherited-members" here: a default of True would override the list of
# base classes that _templates/class.rst excludes
autodoc_default_options = {"members": True}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False

# The class pages (_templates/class.rst) list the methods skmoe defines,
# inherited ones included (gate_proba, predict_expert, bic, ...), but not
# those of scikit-learn's base classes and mixins (get_params, score, ...),
# documented by scikit-learn itself. The metadata-routing setters
# (set_fit_request, ...) are generated on each class by scikit-learn: skipped
# too.
_SKLEARN_GENERATED = re.compile(r"set_\w+_request")


def _skip_sklearn_generated(app, what, name, obj, skip, options):
    if _SKLEARN_GENERATED.fullmatch(name):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_sklearn_generated)


sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    # run every example; the main job runs its quick variant in the tests and
    # is shown with its results on the benchmarks page. The examples are
    # sized to run in seconds (the whole gallery in about 15 s on 2 cores),
    # and the GPU example stops at once without CUDA, so they run as they are.
    "filename_pattern": r".*\.py$",
    "ignore_pattern": r"compare_ensembles\.py$",
    "download_all_examples": False,
    "within_subsection_order": "FileNameSortKey",
    "image_scrapers": ("matplotlib",),
    "reset_modules": ("matplotlib",),
}

html_theme = "pydata_sphinx_theme"
html_title = f"skmoe {version}"
html_theme_options = {"navigation_with_keys": False}
