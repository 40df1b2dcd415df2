"""Sessions flagged before `ChatSession.may_be_held` existed get the mark, so the clock's
one-statement expiry leaves every flagged session to its locked path, which asks care whether the
flag still holds it (sessions_app/migrations/0007; docs/clock.md "Expiry in one statement")."""

from django.db import migrations


def mark(apps, schema_editor):  # type: ignore[no-untyped-def]
    crisis_flag = apps.get_model("care", "CrisisFlag")
    chat_session = apps.get_model("sessions_app", "ChatSession")
    flagged = crisis_flag.objects.values_list("session_id", flat=True)
    chat_session.objects.filter(pk__in=flagged).update(may_be_held=True)


class Migration(migrations.Migration):
    dependencies = [
        ("care", "0002_canned_responses"),
        ("sessions_app", "0007_session_may_be_held"),
    ]

    operations = [migrations.RunPython(mark, migrations.RunPython.noop)]
