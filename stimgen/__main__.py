"""``python -m stimgen``: the same as the ``stimgen`` command."""

import sys

from .cli import main

sys.exit(main())
