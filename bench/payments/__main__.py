"""`python -m bench.payments [--payments 200] [--mitras 20]` (see bench/payments/run.py)."""

import sys

from bench.payments.run import main

sys.exit(main(sys.argv[1:]))
