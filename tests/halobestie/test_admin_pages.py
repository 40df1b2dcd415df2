"""Every model of ours is in the ops control room, and its list and detail pages render."""

import datetime as dt

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from sessions_app.models import ChatMessage, ChatSession

OUR_APPS = ("opsconfig", "accounts", "mitras", "availability", "payments", "sessions_app")


@pytest.fixture
def ops_client(db):
    user = get_user_model().objects.create_superuser("ops-test", "ops@example.invalid", "pw-not-used-123")
    client = Client(REMOTE_ADDR="127.0.0.1")
    client.force_login(user)
    return client


def test_every_model_is_registered():
    missing = [
        m._meta.label
        for m in apps.get_models()
        if m._meta.app_label in OUR_APPS and not admin.site.is_registered(m)
    ]
    assert missing == []


def test_list_and_detail_pages_render_for_every_model(ops_client, make_customer, make_mitra):
    customer = make_customer(phone="+6281234567890")
    mitra = make_mitra()
    now = timezone.now()
    session = ChatSession.objects.create(
        customer=customer,
        mitra=mitra,
        status="active",
        duration_minutes=15,
        started_at=now,
        expires_at=now + dt.timedelta(minutes=15),
    )
    ChatMessage.objects.create(session=session, sender="customer", client_id="c1", text="halo")

    for model in apps.get_models():
        if model._meta.app_label not in OUR_APPS:
            continue
        opts = model._meta
        listing = ops_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
        assert listing.status_code == 200, opts.label
        row = model._default_manager.first()
        if row is not None:
            detail = ops_client.get(
                reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[row.pk])
            )
            assert detail.status_code == 200, opts.label


def test_customer_list_masks_phone_numbers(ops_client, make_customer):
    make_customer(phone="+6281234567890")
    page = ops_client.get(reverse("admin:accounts_customer_changelist")).content.decode()
    assert "+6281234567890" not in page
