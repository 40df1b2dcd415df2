"""Fuzz the whole REST API with schemathesis (docs/security.md "Fuzzing"); what `make fuzz` runs.

Every operation of the OpenAPI schema, positive and negative examples, with a customer token, a
mitra token, or both (/api/shared), in-process through Django's WSGI handler against the real test
Postgres (database test_halobestie_fuzz) and a Valkey server the run starts itself. Fails on any
5xx, any response outside the envelope or the documented schema/status codes, any schema-valid
request rejected with 400/422, any schema-violating request accepted.

    .venv/bin/python scripts/fuzz.py                 # FUZZ_MAX_EXAMPLES=40 per operation
    FUZZ_MAX_EXAMPLES=200 .venv/bin/python scripts/fuzz.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    env = dict(os.environ)
    env.setdefault("FUZZ_MAX_EXAMPLES", "40")
    env.setdefault("TEST_DB_SUFFIX", "fuzz")
    started = time.monotonic()
    command = [sys.executable, "-m", "pytest", "-q", "-m", "fuzz", "tests/fuzz", *sys.argv[1:]]
    result = subprocess.run(command, cwd=ROOT, env=env, check=False)
    print(f"fuzz: {env['FUZZ_MAX_EXAMPLES']} examples per operation, {time.monotonic() - started:.0f} s")
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
