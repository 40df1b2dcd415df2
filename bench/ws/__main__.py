"""`python -m bench.ws [--pairs 40] [--messages 20]` (see bench/ws/relay.py)."""

import sys

from bench.ws.relay import main

sys.exit(main(sys.argv[1:]))
