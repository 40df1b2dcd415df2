from django.db import migrations


def create_default_row(apps, schema_editor):
    AppConfig = apps.get_model("opsconfig", "AppConfig")
    AppConfig.objects.get_or_create(pk=1)


class Migration(migrations.Migration):
    dependencies = [("opsconfig", "0001_initial")]

    operations = [migrations.RunPython(create_default_row, migrations.RunPython.noop)]
