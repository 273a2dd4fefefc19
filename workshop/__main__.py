"""``python -m workshop`` is the ``workshop`` command."""

from workshop.cli import main

raise SystemExit(main())
