"""`python -m services` runs the `govsync` command."""

import sys

from services.cli import main

sys.exit(main())
