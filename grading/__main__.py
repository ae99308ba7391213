"""``python -m grading``: see ``grading/cli.py``."""

from .cli import main

raise SystemExit(main())
