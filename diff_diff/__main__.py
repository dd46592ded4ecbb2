"""``python -m diff_diff``: see :mod:`diff_diff.cli`."""

from .cli import main

raise SystemExit(main())
