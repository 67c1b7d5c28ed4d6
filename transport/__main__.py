"""python -m transport: the command line."""

import sys

from transport.cli import main

sys.exit(main())
