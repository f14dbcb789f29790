"""`python -m rft.annotate ...` is `rft annotate ...`."""

import sys

from rft.annotate.cli import main

sys.exit(main(sys.argv[1:]))
