"""The payment provider behind one small interface, chosen by settings (docs/payments.md "Provider").

- XenditProvider: the real one, Xendit's Invoice API over HTTPS (stdlib urllib, Basic auth with the
  secret key, short timeouts). Used when settings.XENDIT_ENABLED is on.
- DevStandInProvider: the dev stand-in. No money moves and no invoice exists; a payment is confirmed
  only by the dev force-confirm route (POST /internal/_test/force-confirm-payment).

Every failure to reach the provider, a timeout, or a 5xx/unexpected answer raises
ProviderUnavailable; callers turn it into PAYMENT_PROVIDER_UNAVAILABLE (HTTP 502) or retry on the
next sweep. Nothing here writes a row: payments.services does.
"""

from __future__ import annotations

import base64
import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from django.conf import settings

logger = logging.getLogger(__name__)

# Invoice statuses as Xendit reports them.
INVOICE_PENDING = "PENDING"
INVOICE_PAID = "PAID"
INVOICE_SETTLED = "SETTLED"
INVOICE_EXPIRED = "EXPIRED"
PAID_STATUSES = frozenset({INVOICE_PAID, INVOICE_SETTLED})

# Our catalog codes → Xendit's `payment_methods` names (the chosen method is the only one offered).
XENDIT_METHODS = {
    "qris": "QRIS",
    "dana": "DANA",
    "ovo": "OVO",
    "shopeepay": "SHOPEEPAY",
    "linkaja": "LINKAJA",
    "bca_va": "BCA",
    "bni_va": "BNI",
    "bri_va": "BRI",
    "mandiri_va": "MANDIRI",
    "permata_va": "PERMATA",
    "card": "CREDIT_CARD",
}
# Xendit's Refunds API covers e-wallet payments; QRIS and virtual-account payments go back by a
# manual transfer that ops record (docs/payments.md "Refunds").
REFUNDABLE_GROUPS = frozenset({"ewallet", "card"})


class ProviderUnavailable(Exception):
    """The provider could not be reached, timed out, or answered with an error."""


@dataclass(frozen=True)
class Invoice:
    id: str
    status: str
    amount: int
    invoice_url: str = ""
    paid_amount: int | None = None
    payment_channel: str = ""
    paid_at: str = ""


@dataclass(frozen=True)
class RefundResult:
    """What the provider did with a refund: `status` is Xendit's (PENDING, SUCCEEDED, FAILED)."""

    id: str
    status: str


class PaymentProvider:
    name = "base"
    issues_invoices = False

    def invoice_create(
        self,
        *,
        external_id: str,
        amount: int,
        description: str,
        method_code: str,
        duration_seconds: int,
        idempotency_key: str,
    ) -> Invoice:
        raise NotImplementedError

    def invoice_get(self, *, invoice_id: str) -> Invoice:
        raise NotImplementedError

    def invoice_expire(self, *, invoice_id: str) -> None:
        raise NotImplementedError

    def refund_supported(self, *, method_group: str) -> bool:
        return False

    def refund_create(
        self, *, invoice_id: str, amount: int, reason: str, idempotency_key: str
    ) -> RefundResult:
        raise NotImplementedError


class DevStandInProvider(PaymentProvider):
    """Dev stand-in (XENDIT_ENABLED off): no invoice, nothing to ask, nothing to refund.

    Requests stay pending until the dev force-confirm route confirms them, or they expire."""

    name = "dev-stand-in"

    def invoice_create(self, **kwargs: Any) -> Invoice:
        return Invoice(id="", status=INVOICE_PENDING, amount=int(kwargs["amount"]))

    def invoice_get(self, *, invoice_id: str) -> Invoice:
        raise ProviderUnavailable("the dev stand-in has no invoices")

    def invoice_expire(self, *, invoice_id: str) -> None:
        return None


def _int_or_none(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def invoice_from_xendit(data: dict[str, Any]) -> Invoice:
    """An Invoice from Xendit's invoice object (the API answer and the callback share the fields).

    Text fields are bounded and stripped of NUL (Postgres text cannot hold it), since a callback body
    is outside input even after its token matched."""

    def text(value: Any, limit: int) -> str:
        return str(value or "").replace("\x00", "")[:limit]

    return Invoice(
        id=text(data.get("id"), 120),
        status=text(data.get("status"), 40).upper(),
        amount=_int_or_none(data.get("amount")) or 0,
        invoice_url=text(data.get("invoice_url"), 500),
        paid_amount=_int_or_none(data.get("paid_amount")),
        payment_channel=text(data.get("payment_channel") or data.get("payment_method"), 40),
        paid_at=text(data.get("paid_at"), 40),
    )


class XenditProvider(PaymentProvider):
    """Xendit's Invoice API: POST /v2/invoices, GET /v2/invoices/{id}, POST /invoices/{id}/expire!,
    POST /refunds. Basic auth (secret key as user, empty password)."""

    name = "xendit"
    issues_invoices = True

    def __init__(self, *, api_base: str, secret_key: str, timeout: float) -> None:
        self.api_base = api_base.rstrip("/")
        token = base64.b64encode(f"{secret_key}:".encode()).decode()
        self._auth = f"Basic {token}"
        self.timeout = timeout

    def _call(
        self, method: str, path: str, body: dict[str, Any] | None = None, idempotency_key: str = ""
    ) -> dict[str, Any]:
        headers = {"Authorization": self._auth, "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if idempotency_key:
            headers["X-IDEMPOTENCY-KEY"] = idempotency_key
        if not self.api_base.startswith(("https://", "http://")):
            raise ProviderUnavailable("XENDIT_API_BASE is not an http(s) URL")
        request = urllib.request.Request(  # noqa: S310 - scheme checked above
            self.api_base + path, data=data, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                raw = response.read()
        except urllib.error.HTTPError as exc:
            # The error body names the problem (error_code); it holds no secret.
            detail = exc.read()[:300].decode("utf-8", "replace")
            logger.warning("xendit %s %s answered %s: %s", method, path, exc.code, detail)
            raise ProviderUnavailable(f"xendit answered {exc.code}") from exc
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            logger.warning("xendit %s %s failed: %s", method, path, exc)
            raise ProviderUnavailable(f"xendit unreachable: {exc}") from exc
        try:
            parsed = json.loads(raw or b"{}")
        except ValueError as exc:
            raise ProviderUnavailable("xendit answered with a body that is not JSON") from exc
        if not isinstance(parsed, dict):
            raise ProviderUnavailable("xendit answered with an unexpected body")
        return parsed

    def invoice_create(
        self,
        *,
        external_id: str,
        amount: int,
        description: str,
        method_code: str,
        duration_seconds: int,
        idempotency_key: str,
    ) -> Invoice:
        body = {
            "external_id": external_id,
            "amount": int(amount),
            "currency": "IDR",
            "description": description,
            "invoice_duration": int(duration_seconds),
            "payment_methods": [XENDIT_METHODS.get(method_code, method_code.upper())],
            "success_redirect_url": settings.PAYMENT_SUCCESS_REDIRECT_URL,
            "failure_redirect_url": settings.PAYMENT_FAILURE_REDIRECT_URL,
        }
        invoice = invoice_from_xendit(self._call("POST", "/v2/invoices", body, idempotency_key))
        if not invoice.id or not invoice.invoice_url:
            raise ProviderUnavailable("xendit created no usable invoice")
        return invoice

    def invoice_get(self, *, invoice_id: str) -> Invoice:
        path = "/v2/invoices/" + urllib.parse.quote(invoice_id, safe="")
        return invoice_from_xendit(self._call("GET", path))

    def invoice_expire(self, *, invoice_id: str) -> None:
        self._call("POST", "/invoices/" + urllib.parse.quote(invoice_id, safe="") + "/expire!")

    def refund_supported(self, *, method_group: str) -> bool:
        return method_group in REFUNDABLE_GROUPS

    def refund_create(
        self, *, invoice_id: str, amount: int, reason: str, idempotency_key: str
    ) -> RefundResult:
        body = {"invoice_id": invoice_id, "amount": int(amount), "currency": "IDR", "reason": reason}
        data = self._call("POST", "/refunds", body, idempotency_key)
        return RefundResult(id=str(data.get("id") or ""), status=str(data.get("status") or "").upper())


def payment_provider() -> PaymentProvider:
    """The provider the settings choose (read each call, so tests can switch settings)."""
    if settings.XENDIT_ENABLED:
        return XenditProvider(
            api_base=settings.XENDIT_API_BASE,
            secret_key=settings.XENDIT_SECRET_KEY,
            timeout=settings.XENDIT_TIMEOUT_SECONDS,
        )
    return DevStandInProvider()
