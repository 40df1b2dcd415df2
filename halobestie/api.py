"""The API envelope for the OpenAPI schema (`Envelope`, `ok`, `ErrorEnvelope`). Errors become
responses in halobestie.exceptions; the routers are mounted by halobestie.routers."""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any, Literal

from ninja import Schema
from pydantic import BeforeValidator, create_model


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


def _json_integer(value: Any) -> Any:
    """JSON has one number type: 30 and 30.0 are the same integer (JSON Schema agrees), but a
    string, a boolean or 30.5 is not one."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("Input should be a valid integer")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("Input should be a valid integer")
        return int(value)
    return value


# An integer field of a JSON body: no coercion from strings or booleans, 30.0 accepted as 30.
JsonInt = Annotated[int, BeforeValidator(_json_integer)]
