"""Production settings: refuse a weak JWT secret; no dev stand-ins (code logging, bypass) by default."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STRONG = "s" * 48

PROBE = (
    "import json, halobestie.settings.production as p; "
    "print(json.dumps({'log_codes': p.OTP_SENDER_LOG_CODES, 'bypass': p.OTP_TEST_BYPASS_ENABLED, "
    "'sender': p.OTP_SENDER}))"
)


def _run(args, **env_over):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTH_JWT", "DJANGO_", "OTP_"))}
    env.update(env_over)
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)


def test_production_refuses_a_short_jwt_secret():
    result = _run([sys.executable, "-c", PROBE], AUTH_JWT_SECRET="short-secret", DJANGO_SECRET_KEY=STRONG)
    assert result.returncode != 0
    assert "AUTH_JWT_SECRET must be set to at least 32 characters" in result.stderr


def test_production_refuses_a_missing_jwt_secret_at_startup():
    result = _run(
        [sys.executable, "manage.py", "check"],
        DJANGO_SETTINGS_MODULE="halobestie.settings.production",
        DJANGO_SECRET_KEY=STRONG,
    )
    assert result.returncode != 0
    assert "AUTH_JWT_SECRET" in result.stderr


def test_production_defaults_have_no_dev_stand_ins():
    result = _run([sys.executable, "-c", PROBE], AUTH_JWT_SECRET=STRONG, DJANGO_SECRET_KEY=STRONG)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "log_codes": False,
        "bypass": False,
        "sender": "accounts.otp_senders.HttpOtpSender",
    }
    enabled = _run(
        [sys.executable, "-c", PROBE],
        AUTH_JWT_SECRET=STRONG,
        DJANGO_SECRET_KEY=STRONG,
        OTP_TEST_BYPASS_IN_PRODUCTION="1",
    )
    assert json.loads(enabled.stdout)["bypass"] is True
