"""Ops commands: bulk mitra create / deactivate from CSV (through mitras' services), report export."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from controlroom.models import AuditEntry
from mitras.models import Mitra, MitraOnlineStatus

pytestmark = pytest.mark.django_db


def _run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_import_creates_through_the_service_skips_existing_and_reports_bad_rows(tmp_path: Path):
    file = tmp_path / "mitras.csv"
    file.write_text(
        "phone,display_name\n0812-3456-7001,Hana\n+6281234567002,Indra\n12345,Bad\n0812 3456 7001,Hana again\n"
    )
    with pytest.raises(CommandError, match="1 row"):
        _run("mitras_import_csv", str(file), "--every", "2")
    assert set(Mitra.objects.values_list("display_name", flat=True)) == {"Hana", "Indra"}
    assert MitraOnlineStatus.objects.count() == 2  # the service made the status rows
    file.write_text("phone,display_name\n0812-3456-7001,Hana\n")
    out, _ = _run("mitras_import_csv", str(file))
    assert "0 created, 1 already there, 0 bad" in out


def test_import_dry_run_creates_nothing(tmp_path: Path):
    file = tmp_path / "mitras.csv"
    file.write_text("phone,display_name\n081234567003,Joko\n")
    out, _ = _run("mitras_import_csv", str(file), "--dry-run")
    assert "1 would be created" in out and not Mitra.objects.exists()


def test_deactivate_from_csv_is_audited(tmp_path: Path, make_mitra):
    a, b = make_mitra(phone="+6281234567004"), make_mitra(phone="+6281234567005")
    file = tmp_path / "off.csv"
    file.write_text(f"id,phone\n{a.pk},\n,081234567005\n,081299999999\n")
    with pytest.raises(CommandError, match="1 row"):
        _run("mitras_deactivate_csv", str(file))
    assert not Mitra.objects.filter(pk__in=[a.pk, b.pk], is_active=True).exists()
    assert AuditEntry.objects.filter(action="mitra.deactivate").count() == 2


def test_report_export_hourly_and_audit(tmp_path: Path):
    out_file = tmp_path / "hourly.csv"
    _, err = _run("report_export", "hourly", "--out", str(out_file))
    rows = list(csv.reader(out_file.open()))
    assert rows[0][0] == "hour" and len(rows) == 25 and "24 row(s)" in err
    out, _ = _run("report_export", "audit")
    assert out.splitlines()[0].startswith("at,actor,action")
