"""What a table's indexes are, read from Postgres' catalog (tests of write-path storage choices)."""

from __future__ import annotations

from django.db import connections


def index_columns(table: str) -> list[tuple[str, ...]]:
    """Each index of `table` as its key columns, in order."""
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT array_agg(a.attname ORDER BY k.ord) FROM pg_index i"
            " JOIN pg_class t ON t.oid = i.indrelid"
            " CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)"
            " JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum"
            " WHERE t.relname = %s GROUP BY i.indexrelid",
            [table],
        )
        return [tuple(row[0]) for row in cursor.fetchall()]


def redundant_indexes(table: str) -> list[tuple[str, ...]]:
    """Indexes whose columns lead another index of the table (every write pays for both)."""
    indexes = index_columns(table)
    return [a for a in indexes for b in indexes if a != b and b[: len(a)] == a]


def foreign_keys(table: str) -> list[str]:
    """The names of the table's foreign-key constraints."""
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT c.conname FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid"
            " WHERE t.relname = %s AND c.contype = 'f'",
            [table],
        )
        return [row[0] for row in cursor.fetchall()]
