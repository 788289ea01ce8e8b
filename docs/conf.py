"""Sphinx configuration for the sysvkit manual.

The build reads the installed sysvkit (autodoc imports it, the doctest
builder runs the examples against it) and needs no network: no
intersphinx, no remote images, the built-in theme.
"""

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective

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

exclude_patterns = []
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

# Every example removes what it makes.  The cleanup after each page checks:
# an object still named in the page's namespace that still exists fails the
# build (after it is removed, so that nothing is left in the kernel).
doctest_global_cleanup = """
import sysvkit._base as _sysvkit_base
_left = []
for _name, _obj in list(globals().items()):
    if not isinstance(_obj, _sysvkit_base.IPCObject):
        continue
    try:
        _info = _obj.stat()
        _alive = not getattr(_info, "removed", False)
    except OSError:
        _alive = False
    for _step in (("remove", "close") if _alive else ("close",)):
        try:
            getattr(_obj, _step)()
        except (OSError, ValueError, BufferError, RuntimeError):
            pass
    if _alive:
        _left.append(_name)
if _left:
    raise AssertionError("the examples did not remove: " + ", ".join(sorted(_left)))
"""


def _plain_core_docstrings(app, what, name, obj, options, lines):
    """The compiled core's docstrings are plain text, not reStructuredText:
    ``<= |mtype|`` there is an absolute value, not a substitution."""
    if getattr(obj, "__module__", None) == "sysvkit._core" or name.startswith("sysvkit.lowlevel."):
        lines[:] = [line.replace("|", "\\|") for line in lines]


def _no_inherited_int_docs(app, what, name, obj, options, lines):
    """A constant (``IPC_CREAT``) has no docstring of its own: show its
    value, not the documentation of ``int``."""
    if what == "data" and lines and "\n".join(lines).strip() == (type(obj).__doc__ or "").strip():
        lines[:] = []


def _no_self(app, what, name, obj, options, signature, return_annotation):
    """Cython's embedded signatures of the core's methods start with ``self``."""
    if signature and signature.startswith("(self, "):
        signature = "(" + signature[len("(self, "):]
    elif signature == "(self)":
        signature = "()"
    return signature, return_annotation


class LowlevelConstants(SphinxDirective):
    """``.. lowlevel-constants::``: every int constant of sysvkit.lowlevel with
    its value on the machine that builds the manual."""

    def run(self):
        from sysvkit import lowlevel

        text = []
        for name in lowlevel.__all__:
            value = getattr(lowlevel, name)
            if isinstance(value, int) and not isinstance(value, bool):
                text += [".. py:data:: %s" % name, "   :module: sysvkit.lowlevel",
                         "   :type: int", "   :value: %d" % value, ""]
        holder = nodes.Element()
        self.state.nested_parse(StringList(text, "sysvkit.lowlevel"), self.content_offset,
                                holder)
        return holder.children


def _public_groups():
    """sysvkit's public names (``__all__``) by group, so that a new class or
    function appears in the reference without editing it."""
    import dataclasses

    groups = {"objects": [], "records": [], "functions": [], "errors": [], "constants": []}
    for name in sysvkit.__all__:
        obj = getattr(sysvkit, name)
        if isinstance(obj, type) and issubclass(obj, BaseException):
            groups["errors"].append(("autoexception", name))
        elif isinstance(obj, type) and dataclasses.is_dataclass(obj):
            groups["records"].append(("autoclass", name))
        elif isinstance(obj, type):
            groups["objects"].append(("autoclass", name))
        elif callable(obj):
            groups["functions"].append(("autofunction", name))
        else:
            groups["constants"].append(("autodata", name))
    return groups


class PublicNames(SphinxDirective):
    """``.. sysvkit-names:: GROUP``: autodoc of every public name of sysvkit in
    GROUP (objects, records, functions, errors, constants)."""

    required_arguments = 1

    def run(self):
        text = []
        for directive, name in _public_groups()[self.arguments[0]]:
            text.append(".. %s:: sysvkit.%s" % (directive, name))
            if directive == "autoclass" and self.arguments[0] == "objects":
                text += ["   :members:", "   :inherited-members:"]
            text.append("")
        holder = nodes.Element()
        self.state.nested_parse(StringList(text, "sysvkit.__all__"), self.content_offset,
                                holder)
        return holder.children


def setup(app):
    app.add_directive("sysvkit-names", PublicNames)
    app.add_directive("lowlevel-constants", LowlevelConstants)
    app.connect("autodoc-process-docstring", _plain_core_docstrings)
    app.connect("autodoc-process-docstring", _no_inherited_int_docs)
    app.connect("autodoc-process-signature", _no_self)
