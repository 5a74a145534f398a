"""``python -m rrweb_dali``: the same as the ``rrweb-dali`` console script."""

from rrweb_dali.cli import main

raise SystemExit(main())
