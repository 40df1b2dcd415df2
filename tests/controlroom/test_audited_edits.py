"""Config, pricing and mitra edits in the admin: validated, and audited old → new (shown read-only)."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from controlroom.models import AuditEntry
from opsconfig.models import AppConfig
from opsconfig.services import config_get
from payments.models import PricingTier
from tests.controlroom.support import client_for, staff
from tests.sessions_app.pairing_support import seed

pytestmark = pytest.mark.django_db(transaction=True)


def _form_data(client: Client, url: str, **changes: Any) -> dict[str, Any]:
    """The change form's current values (as the browser would send them) with `changes` applied."""
    form = client.get(url).context["adminform"].form
    data: dict[str, Any] = {}
    for name, field in form.fields.items():
        value = form.initial.get(name, field.initial)
        if value is None:
            continue
        if isinstance(value, bool):
            if value:
                data[name] = "on"
            continue
        data[name] = value
    data.update(changes)
    return data


def test_config_edit_is_validated_and_audited(db):
    config_get(fresh=True)
    row = AppConfig.objects.get()
    client = client_for(staff("admin", "ops-admin"))
    url = reverse("admin:opsconfig_appconfig_change", args=[row.pk])
    old_stale = row.mitra_stale_after_seconds
    cadence = int(settings.MITRA_HEARTBEAT_CADENCE_SECONDS)

    bad = client.post(url, _form_data(client, url, mitra_stale_after_seconds=cadence - 1))
    assert bad.status_code == 200 and "at least the heartbeat cadence" in bad.content.decode()
    assert AppConfig.objects.get().mitra_stale_after_seconds == old_stale
    assert not AuditEntry.objects.exists()

    new_stale = old_stale + 30
    ok = client.post(url, _form_data(client, url, mitra_stale_after_seconds=new_stale))
    assert ok.status_code == 302
    assert config_get(fresh=True).mitra_stale_after_seconds == new_stale
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.object_type, entry.actor_username) == (
        "admin.change",
        "opsconfig.appconfig",
        "ops-admin",
    )
    assert entry.old == {"mitra_stale_after_seconds": old_stale}
    assert entry.new == {"mitra_stale_after_seconds": new_stale}

    # Shown in the admin, read-only.
    listing = client.get(reverse("admin:controlroom_auditentry_changelist")).content.decode()
    assert "admin.change" in listing
    assert client.get(reverse("admin:controlroom_auditentry_add")).status_code == 403
    detail = client.post(reverse("admin:controlroom_auditentry_change", args=[entry.pk]), {"action": "x"})
    assert AuditEntry.objects.get().action == "admin.change"
    assert detail.status_code in (200, 403)


def test_pricing_edit_by_finance_is_audited(db):
    seed()
    tier = PricingTier.objects.order_by("pk").first()
    assert tier is not None
    client = client_for(staff("finance"))
    url = reverse("admin:payments_pricingtier_change", args=[tier.pk])
    response = client.post(url, _form_data(client, url, price=tier.price + 5000))
    assert response.status_code == 302
    entry = AuditEntry.objects.get(object_type="payments.pricingtier")
    assert entry.old == {"price": tier.price} and entry.new == {"price": tier.price + 5000}


def test_mitra_deactivation_from_the_admin_is_audited(make_mitra):
    mitra = make_mitra("Dewi")
    client = client_for(staff("support"))
    client.post(
        reverse("admin:mitras_mitra_changelist"),
        {"action": "deactivate_selected", "_selected_action": [str(mitra.pk)]},
    )
    entry = AuditEntry.objects.get(action="mitra.deactivate")
    assert entry.object_id == str(mitra.pk) and entry.new == {"is_active": False}


def test_a_save_over_someone_elses_newer_save_is_refused(db):
    seed()
    tier = PricingTier.objects.order_by("pk").first()
    assert tier is not None
    client = client_for(staff("finance"))
    url = reverse("admin:payments_pricingtier_change", args=[tier.pk])
    mine = _form_data(client, url, price=tier.price + 1000)
    assert mine["version"]  # pricing carries the row's version (payments' optimistic lock)
    # Meanwhile a colleague saves a new price.
    theirs = _form_data(client, url, price=tier.price + 2000)
    assert client.post(url, theirs).status_code == 302
    response = client.post(url, mine)
    assert response.status_code == 200 and "Someone else changed this" in response.content.decode()
    assert PricingTier.objects.get(pk=tier.pk).price == tier.price + 2000
    assert AuditEntry.objects.filter(object_type="payments.pricingtier").count() == 1
