"""manage.py create_ops_admin: the documented way to make the first ops account of a deploy."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client

pytestmark = pytest.mark.django_db

STRONG = "kopi-susu-Gula-aren-42"


def run(*args: str) -> str:
    out = StringIO()
    call_command("create_ops_admin", *args, stdout=out)
    return out.getvalue()


def test_from_environment_creates_a_superuser_who_can_open_the_admin(monkeypatch):
    monkeypatch.setenv("OPS_ADMIN_USERNAME", "ops-jakarta")
    monkeypatch.setenv("OPS_ADMIN_EMAIL", "ops@halobestie.example")
    monkeypatch.setenv("OPS_ADMIN_PASSWORD", STRONG)

    output = run("--no-input")

    user = get_user_model().objects.get(username="ops-jakarta")
    assert user.is_superuser and user.is_staff and user.is_active
    assert user.email == "ops@halobestie.example"
    assert user.check_password(STRONG)
    assert STRONG not in output  # a given password is never echoed
    client = Client(REMOTE_ADDR="127.0.0.1")
    assert client.login(username="ops-jakarta", password=STRONG)
    assert client.get("/admin/").status_code == 200


def test_password_file_and_flags(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("OPS_ADMIN_PASSWORD", raising=False)
    secret = tmp_path / "ops_password"
    secret.write_text(STRONG + "\n")

    run("--username", "ops2", "--password-file", str(secret), "--no-input")

    assert get_user_model().objects.get(username="ops2").check_password(STRONG)


def test_no_password_and_no_terminal_generates_one_and_prints_it_once(monkeypatch):
    monkeypatch.delenv("OPS_ADMIN_PASSWORD", raising=False)

    output = run("--no-input")

    generated = output.rsplit(": ", 1)[1].strip()
    assert len(generated) >= 20
    assert get_user_model().objects.get(username="ops").check_password(generated)


def test_existing_username_is_exit_code_2_and_changes_nothing(monkeypatch):
    monkeypatch.setenv("OPS_ADMIN_PASSWORD", STRONG)
    run("--no-input")
    monkeypatch.setenv("OPS_ADMIN_PASSWORD", "another-Strong-pass-77")

    with pytest.raises(CommandError) as excinfo:
        run("--no-input")

    assert excinfo.value.returncode == 2
    assert get_user_model().objects.get(username="ops").check_password(STRONG)


def test_if_missing_is_a_quiet_success_for_repeated_deploys(monkeypatch):
    monkeypatch.setenv("OPS_ADMIN_PASSWORD", STRONG)
    run("--no-input", "--if-missing")

    output = run("--no-input", "--if-missing")

    assert "already exists" in output
    assert get_user_model().objects.filter(username="ops").count() == 1


@pytest.mark.parametrize(
    ("args", "password", "message"),
    [
        (["--username", "two words"], STRONG, "--username"),
        (["--email", "not-an-email"], STRONG, "--email"),
        ([], "12345678", "password rejected"),
        ([], "ops", "password rejected"),
    ],
)
def test_bad_input_creates_nothing(monkeypatch, args, password, message):
    monkeypatch.setenv("OPS_ADMIN_PASSWORD", password)

    with pytest.raises(CommandError) as excinfo:
        run("--no-input", *args)

    assert message in str(excinfo.value)
    assert get_user_model().objects.count() == 0


def test_missing_or_empty_password_file_is_an_error(tmp_path: Path):
    empty = tmp_path / "empty"
    empty.write_text("")
    for path in (tmp_path / "absent", empty):
        with pytest.raises(CommandError, match="--password-file"):
            run("--password-file", str(path), "--no-input")
    assert get_user_model().objects.count() == 0
