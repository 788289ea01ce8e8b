"""``python -m sysvkit.bench``: the same as ``python -m sysvkit bench``."""

from sysvkit.bench.command import main

raise SystemExit(main())
