"""`python -m venuesim`: see venuesim.cli."""

import sys

from venuesim.cli import main

sys.exit(main())
