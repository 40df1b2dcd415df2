"""`python -m bench.blast [--mitras 1000] [--rounds 5]` (see bench/blast/run.py)."""

import sys

from bench.blast.run import main

sys.exit(main(sys.argv[1:]))
