"""Seed the first-session discount ("Diskon Sesi Pertama"), switched off until ops turn it on."""

from django.db import migrations


def seed(apps, schema_editor):
    promotion = apps.get_model("payments", "PricingPromotion")
    promotion.objects.get_or_create(
        code="first_session",
        defaults={"name": "Diskon Sesi Pertama", "kind": "percent", "value": 20, "is_active": False},
    )


class Migration(migrations.Migration):
    dependencies = [("payments", "0005_pricing_promotion_history")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
