"""Static files are served by the app itself (WhiteNoise) through the ASGI stack, and the API docs page
loads only from this server (django-ninja's bundled swagger-ui, no CDN).

The production path (collectstatic → hashed files served by WhiteNoise under uvicorn) is exercised by
`make smoke` (scripts/smoke.py), which boots the image's commands.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from asgiref.testing import ApplicationCommunicator

from halobestie.asgi import application

# WhiteNoise's file responses are sync iterators; under ASGI Django consumes them in a thread and
# says so once per process (docs/operations.md "Static files"). Expected here, not a defect.
pytestmark = pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous iterators")

ATTR_URL = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)


async def get(path: str) -> dict[str, Any]:
    """One GET through the real ASGI application; a streamed body (file responses) is joined."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"localhost")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    comm = ApplicationCommunicator(application, scope)
    await comm.send_input({"type": "http.request", "body": b"", "more_body": False})
    start = await comm.receive_output(timeout=10)
    assert start["type"] == "http.response.start"
    body = b""
    while True:
        chunk = await comm.receive_output(timeout=10)
        body += chunk.get("body", b"")
        if not chunk.get("more_body", False):
            break
    await comm.wait(timeout=5)
    return {"status": start["status"], "headers": start.get("headers", []), "body": body}


def header(response: dict[str, Any], name: bytes) -> str:
    return next((v.decode() for k, v in response["headers"] if k.lower() == name), "")


async def test_admin_css_is_served_through_the_asgi_app() -> None:
    response = await get("/static/admin/css/base.css")

    assert response["status"] == 200
    assert header(response, b"content-type").startswith("text/css")
    assert b"body" in response["body"]


async def test_unknown_static_file_is_a_plain_404() -> None:
    response = await get("/static/admin/css/no-such-file.css")

    assert response["status"] == 404


async def test_api_docs_page_references_no_external_host_and_its_assets_load() -> None:
    page = await get("/api/docs")
    assert page["status"] == 200
    html = page["body"].decode()
    urls = ATTR_URL.findall(html)

    external = [u for u in urls if re.match(r"^(?:[a-z]+:)?//", u, re.IGNORECASE)]
    assert external == []
    assert "cdn" not in html.lower()
    assets = [u for u in urls if u.startswith("/static/")]
    assert any(u.endswith("swagger-ui-bundle.js") for u in assets), urls
    assert any(u.endswith("swagger-ui.css") for u in assets), urls
    for url in assets:
        response = await get(url)
        assert response["status"] == 200, url
