"""Staff roles as Django groups (docs/control-room.md "Roles"): support, finance, admin.

`roles_sync` is idempotent: it creates the groups and sets each one's permissions to exactly the
list below. It runs after every `migrate` (post_migrate) and from `manage.py ops_roles_sync`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.db.models import Q

SUPPORT = "support"
FINANCE = "finance"
ADMIN = "admin"

_CONTROLROOM_COMMON = ["controlroom.view_dashboard", "controlroom.view_auditentry"]

ROLE_PERMISSIONS: dict[str, list[str]] = {
    # Sessions and mitras: live sessions (reroute, end, topic flag), offers, mitra accounts and presence.
    # Not the transcript (chat messages) and not money.
    SUPPORT: [
        *_CONTROLROOM_COMMON,
        "controlroom.operate_live_sessions",
        "controlroom.view_mitra_activity",
        "sessions_app.view_chatsession",
        "sessions_app.view_chatrequestnotification",
        "sessions_app.view_sessionextension",
        "sessions_app.view_sessionclosure",
        "sessions_app.view_pairingfailure",
        "mitras.view_mitra",
        "mitras.add_mitra",
        "mitras.change_mitra",
        "mitras.view_mitraonlinestatus",
        "mitras.view_mitraonlinelog",
    ],
    # Money: pricing, payment methods, payment requests and webhooks, the failed-pairing refund review;
    # every "refund" permission of the payments app too (the refund cases, once they exist).
    FINANCE: [
        *_CONTROLROOM_COMMON,
        "payments.view_pricingtier",
        "payments.add_pricingtier",
        "payments.change_pricingtier",
        "payments.view_paymentmethod",
        "payments.change_paymentmethod",
        "payments.view_paymentrequest",
        "payments.view_webhooklog",
        "sessions_app.view_pairingfailure",
        "sessions_app.change_pairingfailure",
    ],
}
FINANCE_EXTRA = Q(content_type__app_label="payments", codename__contains="refund")


def _lookup(names: list[str]) -> tuple[list[Permission], list[str]]:
    wanted = {tuple(n.split(".", 1)) for n in names}
    found = [
        p
        for p in Permission.objects.select_related("content_type")
        if (p.content_type.app_label, p.codename) in wanted
    ]
    have = {f"{p.content_type.app_label}.{p.codename}" for p in found}
    return found, sorted(set(names) - have)


@transaction.atomic
def roles_sync(*, progress: Callable[[str], None] | None = None) -> dict[str, int]:
    """Create or update the three groups; returns each group's permission count."""
    say = progress or (lambda _msg: None)
    counts = {}
    for role, names in ROLE_PERMISSIONS.items():
        perms, missing = _lookup(names)
        if role == FINANCE:
            perms += list(Permission.objects.filter(FINANCE_EXTRA))
        group, created = Group.objects.get_or_create(name=role)
        group.permissions.set(perms)
        counts[role] = len(perms)
        say(f"{role}: {'created' if created else 'updated'}, {len(perms)} permissions")
        if missing:
            say(f"{role}: not found (yet): {', '.join(missing)}")
    group, created = Group.objects.get_or_create(name=ADMIN)
    group.permissions.set(Permission.objects.all())
    counts[ADMIN] = group.permissions.count()
    say(f"{ADMIN}: {'created' if created else 'updated'}, {counts[ADMIN]} permissions (all)")
    return counts


def roles_sync_after_migrate(**kwargs: Any) -> None:
    roles_sync()
