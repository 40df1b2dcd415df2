"""Seed the launch pricing tiers and payment methods (pairing work)."""

from django.db import migrations


def seed(apps, schema_editor):
    from payments.catalog import seed_catalog

    seed_catalog(apps.get_model("payments", "PricingTier"), apps.get_model("payments", "PaymentMethod"))


class Migration(migrations.Migration):
    dependencies = [("payments", "0001_initial")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
