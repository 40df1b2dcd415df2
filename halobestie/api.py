"""The API envelope for the OpenAPI schema (`Envelope`, `ok`, `ErrorEnvelope`). Errors become
responses in halobestie.exceptions; the routers are mounted by halobestie.routers."""

from __future__ import annotations

from functools import cache
from typing import Any, Literal

from ninja import Schema
from pydantic import create_model


class ErrorBody(Schema):
    code: str
    message: str


class ErrorEnvelope(Schema):
    success: Literal[False] = False
    error: ErrorBody


@cache
def Envelope(data_schema: Any) -> Any:  # noqa: N802 - reads like a generic type
    """`{"success": true, "data": <data_schema>}` for the OpenAPI schema."""
    name = getattr(data_schema, "__name__", "Data")
    return create_model(
        f"{name}Envelope",
        __base__=Schema,
        success=(Literal[True], True),
        data=(data_schema, ...),
    )


def ok(data: Any) -> dict[str, Any]:
    return {"success": True, "data": data}


# Common error responses to document on operations.
ERRORS_AUTH = {401: ErrorEnvelope, 403: ErrorEnvelope, 422: ErrorEnvelope}
