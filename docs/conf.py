"""Sphinx configuration of the bids_taskenc documentation (``make docs``).

Pages are MyST Markdown; the command-line reference is generated from the parser
(sphinx-argparse), the example gallery is executed when the docs build (sphinx-gallery),
so what the docs show is what this version does.
"""

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bids_taskenc.__about__ import __version__  # noqa: E402

project = "bids_taskenc"
author = "the bids_taskenc developers"
copyright = "2026, the bids_taskenc developers"  # noqa: A001
version = release = __version__

extensions = [
    "myst_parser",
    "sphinxarg.ext",
    "sphinx_gallery.gen_gallery",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence", "deflist"]
exclude_patterns = ["_build", "examples/*", "auto_examples/*.ipynb", "auto_examples/*.py", "auto_examples/*.zip"]
html_theme = "furo"
html_title = f"bids_taskenc {release}"
suppress_warnings = ["myst.header"]
nitpicky = False
autodoc_typehints = "description"
autodoc_member_order = "bysource"
intersphinx_mapping: dict = {}

# The gallery runs every example (not only plot_*.py) and writes what they make into a temporary folder,
# never into the source tree.
os.environ.setdefault("BIDS_TASKENC_EXAMPLE_OUT", tempfile.mkdtemp(prefix="bids_taskenc_docs_"))
os.environ.setdefault("MPLBACKEND", "Agg")
sphinx_gallery_conf = {
    "examples_dirs": ["examples"],
    "gallery_dirs": ["auto_examples"],
    "filename_pattern": r".*\.py$",
    "download_all_examples": False,
    "abort_on_example_error": True,
    "remove_config_comments": True,
}
