"""`python -m rft.experts ...` is `rft experts ...`."""

import sys

from rft.experts.cli import main

sys.exit(main(sys.argv[1:]))
