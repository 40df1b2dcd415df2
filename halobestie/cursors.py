"""Opaque keyset cursors for paged lists: (a time, an id) encoded as URL-safe text.

A keyset cursor names the last row of the previous page, so rows written while a client pages never
shift or repeat a page. A cursor that this server did not make is a VALIDATION_ERROR on `cursor`.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import uuid

from halobestie.exceptions import ValidationFailed


def keyset_cursor_encode(moment: dt.datetime, row_id: uuid.UUID) -> str:
    raw = json.dumps([moment.isoformat(), str(row_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def keyset_cursor_decode(cursor: str) -> tuple[dt.datetime, uuid.UUID]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        moment_raw, id_raw = json.loads(base64.urlsafe_b64decode(padded.encode()))
        moment = dt.datetime.fromisoformat(moment_raw)
        row_id = uuid.UUID(id_raw)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise ValidationFailed("cursor: not a cursor returned by this endpoint") from exc
    if moment.tzinfo is None:
        raise ValidationFailed("cursor: not a cursor returned by this endpoint")
    return moment, row_id
