"""The test suite's flush between transactional tests (tests/flush.py): DELETE in place of TRUNCATE
leaves every table empty, which needs every foreign key to be deferrable."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection

pytestmark = pytest.mark.django_db(transaction=True)


def test_every_foreign_key_is_deferrable() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conrelid::regclass::text, conname FROM pg_constraint "
            "WHERE contype = 'f' AND NOT condeferrable AND connamespace = 'public'::regnamespace"
        )
        assert cursor.fetchall() == []


def test_the_flush_empties_every_table(make_customer, make_mitra, login) -> None:
    customer = make_customer("Bunga")
    login(customer)
    make_mitra("Mawar")
    tables = connection.introspection.django_table_names(only_existing=True, include_views=False)
    sql = connection.ops.sql_flush(None, tables)
    assert sql[0] == "SET CONSTRAINTS ALL DEFERRED;" and all(s.startswith("DELETE FROM") for s in sql[1:])

    # Without post_migrate, which would write the permissions and groups back (as it does after
    # every test's flush, TRUNCATE or DELETE alike).
    call_command("flush", interactive=False, verbosity=0, inhibit_post_migrate=True)

    with connection.cursor() as cursor:
        counts = {}
        for table in tables:
            cursor.execute(f"SELECT count(*) FROM {connection.ops.quote_name(table)}")
            counts[table] = cursor.fetchone()[0]
    assert {table: n for table, n in counts.items() if n} == {}
    assert counts["customers"] == 0 and counts["mitras"] == 0
