"""`python -m bench.clock [--sessions 1000]`: see run.py."""

from __future__ import annotations

import sys

from bench.clock.run import main

sys.exit(main(sys.argv[1:]))
