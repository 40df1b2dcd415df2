"""The launch catalog: pricing tiers and payment methods seeded by migration 0002_pair_seed_catalog.

Kept as plain data so the data migration and tests seed the same rows. Ops edit prices in the admin
afterwards; seeding never overwrites an existing row (get-or-create by natural key).
"""

from __future__ import annotations

from typing import Any

# (mode, minutes, price in IDR). Chat prices are the issue's; call tiers cost 1.5x chat because a
# voice call keeps the mitra fully occupied (no typing pauses) — ops can change them in the admin.
DEFAULT_TIERS: tuple[tuple[str, int, int], ...] = (
    ("chat", 15, 30_000),
    ("chat", 30, 60_000),
    ("chat", 45, 100_000),
    ("chat", 60, 150_000),
    ("call", 15, 45_000),
    ("call", 30, 90_000),
    ("call", 45, 150_000),
    ("call", 60, 225_000),
)

# (code, name, group, min, max, sort). Limits follow the usual Indonesian provider limits.
DEFAULT_METHODS: tuple[tuple[str, str, str, int, int, int], ...] = (
    ("qris", "QRIS", "qris", 1_500, 10_000_000, 0),
    ("dana", "DANA", "ewallet", 1_000, 10_000_000, 1),
    ("ovo", "OVO", "ewallet", 10_000, 2_000_000, 2),
    ("shopeepay", "ShopeePay", "ewallet", 1_000, 2_000_000, 3),
    ("bca_va", "BCA Virtual Account", "virtual_account", 10_000, 50_000_000, 0),
)


def seed_catalog(pricing_tier_model: Any, payment_method_model: Any) -> None:
    """Create the default tiers and methods that do not exist yet (idempotent)."""
    for mode, minutes, price in DEFAULT_TIERS:
        pricing_tier_model.objects.get_or_create(
            mode=mode, duration_minutes=minutes, defaults={"price": price, "is_active": True}
        )
    for code, name, group, low, high, sort in DEFAULT_METHODS:
        payment_method_model.objects.get_or_create(
            code=code,
            defaults={
                "name": name,
                "group": group,
                "min_amount": low,
                "max_amount": high,
                "sort_order": sort,
                "is_active": True,
            },
        )
