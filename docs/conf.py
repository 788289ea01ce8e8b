"""Sphinx configuration for the sysvkit manual.

The build reads the installed sysvkit (autodoc imports it, the doctest
builder runs the examples against it) and needs no network: no
intersphinx, no remote images, the built-in theme.
"""

import sysvkit

project = "sysvkit"
author = "the sysvkit developers"
copyright = "the sysvkit developers"
version = release = sysvkit.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.doctest",
    "sphinx.ext.napoleon",   # the "Parameters:" sections of the class docstrings
]

napoleon_numpy_docstring = False

exclude_patterns = ["_build"]
templates_path = []
html_static_path = []
html_theme = "alabaster"
html_show_sourcelink = False

# Signatures come from the code: type hints in the Python layer, Cython's
# embedsignature in the compiled core.
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {
    "members": True,
}

# Every example in the manual runs under ``sphinx-build -b doctest``; none
# may leave a kernel object behind (each removes what it makes).
doctest_global_setup = """
import sysvkit
"""

# A safety net for an example that fails half-way: remove every sysvkit
# object still named in the page's namespace (each was made by the example;
# one already removed is skipped).
doctest_global_cleanup = """
import sysvkit._base as _sysvkit_base
for _obj in list(globals().values()):
    if isinstance(_obj, _sysvkit_base.IPCObject):
        for _step in ("remove", "close"):
            try:
                getattr(_obj, _step)()
            except (OSError, ValueError, BufferError, RuntimeError):
                pass
"""


def _plain_core_docstrings(app, what, name, obj, options, lines):
    """The compiled core's docstrings are plain text, not reStructuredText:
    ``<= |mtype|`` there is an absolute value, not a substitution."""
    if getattr(obj, "__module__", None) == "sysvkit._core" or name.startswith("sysvkit.lowlevel."):
        lines[:] = [line.replace("|", "\\|") for line in lines]


def setup(app):
    app.connect("autodoc-process-docstring", _plain_core_docstrings)
