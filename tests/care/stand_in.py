"""A local stand-in for the ops alert webhook receiver: answers a scripted list of statuses."""

from __future__ import annotations

import json
from typing import Any

from tests.accounts.local_http import LocalHttpServer


class AlertReceiver(LocalHttpServer):
    """Real HTTP on 127.0.0.1 (tests.accounts.local_http). `statuses` are answered in order, then
    the last one forever."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        super().__init__(statuses=list(statuses or [200]))

    @property
    def received(self) -> list[dict[str, Any]]:
        return [{"headers": r.headers, "body": json.loads(r.body or b"null")} for r in self.requests]

    @property
    def url(self) -> str:
        return f"{super().url}/alerts"
