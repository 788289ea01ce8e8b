"""``python -m sysvkit``: the sysvkit command line (ipcs, key, rm, bench, demo)."""

from sysvkit.cli.main import main

raise SystemExit(main())
