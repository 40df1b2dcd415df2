"""Production settings refuse to start with the payment provider on and its key or token missing
(a real interpreter importing the settings, as a deploy would)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STRONG = "s" * 48
PROBE = "import halobestie.settings.production as p; print(p.XENDIT_ENABLED)"


def _run(**env_over: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTH_JWT", "DJANGO_", "XENDIT_"))}
    env.update(AUTH_JWT_SECRET=STRONG, DJANGO_SECRET_KEY=STRONG, **env_over)
    return subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    "missing",
    [
        {"XENDIT_SECRET_KEY": "xnd_production_abc"},
        {"XENDIT_CALLBACK_TOKEN": "tok"},
        {},
    ],
)
def test_production_refuses_the_provider_without_key_or_token(missing: dict[str, str]) -> None:
    result = _run(XENDIT_ENABLED="1", **missing)
    assert result.returncode != 0
    assert "XENDIT_ENABLED needs XENDIT_SECRET_KEY and XENDIT_CALLBACK_TOKEN" in result.stderr


def test_production_starts_with_the_provider_configured_or_off() -> None:
    on = _run(XENDIT_ENABLED="1", XENDIT_SECRET_KEY="xnd_production_abc", XENDIT_CALLBACK_TOKEN="tok")
    assert (on.returncode, on.stdout.strip()) == (0, "True"), on.stderr
    off = _run()
    assert (off.returncode, off.stdout.strip()) == (0, "False"), off.stderr
