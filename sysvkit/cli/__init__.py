"""The ``sysvkit`` command line (``python -m sysvkit``), one module per concern.

main.py is the entry point and parser; ipcs.py, key.py and rm.py hold one
command each; tables.py the util-linux table layouts every listing uses.

The names below are re-exported for callers of ``sysvkit.cli.main()`` and
of the helpers.
"""

from .main import main
from .orphans import is_orphan
from .resolve import resolve_keys
from .tables import KINDS, human_size, key_hex, listing_lines, slot_order

__all__ = ["main", "KINDS", "listing_lines", "human_size", "key_hex", "resolve_keys",
           "is_orphan", "slot_order"]
