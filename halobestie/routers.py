"""The one ninja API of the project: every app's routers mounted under /api/, and one error handler.

Part of the composition root (with urls, asgi, routing): it imports the apps, and no app imports it.
Each app's api.py exposes ROUTERS = [(prefix, router), ...]; prefixes are /shared, /client, /mitra.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

import accounts.api
import availability.api
import care.api
import payments.api
import sessions_app.api
from halobestie import health
from halobestie.exceptions import error_response, response_for_exception

api = NinjaAPI(
    title="HaloBestie API",
    version="1.0",
    description="REST contract of the HaloBestie customer and mitra apps (see docs/api.md).",
    docs_url="/docs",
    urls_namespace="api",
)


@api.exception_handler(Exception)
def _handle_any(request: HttpRequest, exc: Exception) -> HttpResponse:
    return response_for_exception(request, exc)


for _module in (health, accounts.api, availability.api, payments.api, sessions_app.api, care.api):
    for _prefix, _router in _module.ROUTERS:
        api.add_router(_prefix, _router)


# Ninja pre-registers handlers for these classes; exception lookup follows the MRO, so they would win
# over the Exception handler above and answer outside the envelope (e.g. without the field name of a
# validation error). Route them through the one mapping. An unparseable body (ninja: HttpError 400)
# is VALIDATION_ERROR, which docs/api-contract.md gives as 422. (added by the accounts/auth work)
def _handle_framework_error(request: HttpRequest, exc: Any) -> HttpResponse:
    if isinstance(exc, HttpError) and exc.status_code == 400:
        return error_response(422, "VALIDATION_ERROR", f"body: {exc}")
    return response_for_exception(request, exc)


for _framework_error in (ValidationError, AuthenticationError, HttpError, Http404):
    api.add_exception_handler(_framework_error, _handle_framework_error)
