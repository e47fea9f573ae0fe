"""Sphinx configuration: the documentation is MyST Markdown (myst-parser), the API reference is generated
from the numpydoc docstrings (autodoc with napoleon).  Build: ``python -m sphinx -W -b html docs
docs/_build/html`` (``.ci/run`` does, warnings as errors)."""

import conv1dbench

project = "conv1dbench"
author = "the conv1dbench developers"
release = version = conv1dbench.__version__
extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.napoleon"]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]
myst_heading_anchors = 3  # links to a page's sections by their titles
napoleon_google_docstring = False
napoleon_numpy_docstring = True
autodoc_member_order = "bysource"
html_theme = "alabaster"
# The pages link to files of the repository (results/, benchmarks/) that are not pages of the documentation.
suppress_warnings = ["myst.xref_missing"]
