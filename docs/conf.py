"""Sphinx configuration of dataworth's documentation (built with ``sh docs/build.sh``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))  # cli_reference.py

# The gallery's examples run while the docs build: keep their plots off any screen and their
# threads polite on a shared machine.
os.environ.setdefault("MPLBACKEND", "Agg")

from cli_reference import write as write_cli_reference  # noqa: E402

import dataworth  # noqa: E402

write_cli_reference(HERE / "cli.md")

project = "dataworth"
author = "the dataworth developers"
release = dataworth.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "**/README.rst", "auto_examples/*.ipynb", "auto_examples/*.py"]
myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3

autosummary_generate = True
autodoc_typehints = "none"  # numpydoc's Parameters sections say the types
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

sphinx_gallery_conf = {
    "examples_dirs": "examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "abort_on_example_error": True,
    "matplotlib_animations": False,
    "within_subsection_order": "FileNameSortKey",
}

# Option names such as --target stay as typed (no en dashes) in the CLI reference.
smartquotes = False

html_theme = "furo"
html_title = f"dataworth {release}"
html_static_path = ["_static"]
