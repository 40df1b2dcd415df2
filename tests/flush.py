"""Emptying the database between transactional tests with DELETE instead of TRUNCATE.

pytest-django empties every table after a `transaction=True` test (Django's `flush`), which on
Postgres is one `TRUNCATE` of every table. A TRUNCATE gives each of the ~50 tables (and their indexes)
a new file and drops the old one's buffers: ~0.45 s here whatever the tables hold, against ~0.08 s
for a `DELETE FROM` of each (the tables of one test hold a handful of rows). The suite without the
fault and fuzz tests went from 623 to 480 s on one machine (docs/conventions.md "Tests").

Same result: every Django table is empty afterwards. The foreign keys Django creates are
`DEFERRABLE INITIALLY DEFERRED` (none here is not: a test reads the catalog), so the order of the
DELETEs does not matter within the flush's one transaction. A flush that must also reset sequences
(`reset_sequences=True`, which no test here uses) keeps Django's TRUNCATE … RESTART IDENTITY.
Test-only: applied by tests/conftest.py, never by the application.
"""

from __future__ import annotations

from typing import Any

from django.db.backends.postgresql.operations import DatabaseOperations

_truncate = DatabaseOperations.sql_flush


def _delete_flush(
    self: DatabaseOperations,
    style: Any,
    tables: list[str],
    *,
    reset_sequences: bool = False,
    allow_cascade: bool = False,
) -> list[str]:
    if reset_sequences or not tables:
        return _truncate(self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade)
    return ["SET CONSTRAINTS ALL DEFERRED;"] + [f"DELETE FROM {self.quote_name(table)};" for table in tables]


def flush_by_delete() -> None:
    DatabaseOperations.sql_flush = _delete_flush  # type: ignore[method-assign, assignment]
