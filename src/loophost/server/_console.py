"""The web console at `/console`: static files shipped inside the package, no build step, no CDN.

The console is a client of the public API like any other: the page holds no data and needs no key to load; the
browser sends the key the user pastes (kept in session storage) on its own `/v1/...` requests. So these routes
are unauthenticated and serve only files of `console/`. Every path under `/console/` that is not an asset is the
page itself (the console routes in the browser, so a deep link such as `/console/sessions/ID?seq=12` works).

The page's Content-Security-Policy allows scripts, styles and connections from this origin only; the one inline
script (the import map naming the vendored modules) is allowed by its hash, computed here from the file.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from pathlib import Path

from fastapi import FastAPI
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

CONSOLE_DIR = Path(__file__).parent / "console"
"""`index.html`, and `static/` with the modules, the stylesheet and the vendored libraries."""

PREFIX = "/console"

_IMPORT_MAP = re.compile(r'<script type="importmap">(.*?)</script>', re.DOTALL)


def _script_hash(html: str) -> str:
    """The CSP source for the page's inline import map (the only inline script), e.g. `'sha256-…'`."""
    found = _IMPORT_MAP.search(html)
    if found is None:
        raise RuntimeError("the console's index.html has no import map")
    digest = hashlib.sha256(found.group(1).encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


def page_headers(html: str) -> dict[str, str]:
    """Same-origin everything, no referrer (a deep link's path never leaves the page), never framed."""
    policy = "; ".join(
        (
            "default-src 'none'",
            f"script-src 'self' {_script_hash(html)}",
            "style-src 'self'",
            "img-src 'self' data: blob:",
            "connect-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        )
    )
    return {
        "content-security-policy": policy,
        "referrer-policy": "no-referrer",
        "x-content-type-options": "nosniff",
        "cache-control": "no-cache",
    }


class _Assets(StaticFiles):
    """Starlette's static files (path checks, ETags), revalidated on every load so an upgrade shows at once."""

    def file_response(
        self, full_path: str | os.PathLike[str], stat_result: os.stat_result, scope: Scope, status_code: int = 200
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["cache-control"] = "no-cache"
        response.headers["x-content-type-options"] = "nosniff"
        return response


def mount_console(app: FastAPI) -> None:
    """Serve the console on `app` under `/console` (and send `/` there). Not part of the OpenAPI document."""
    html = (CONSOLE_DIR / "index.html").read_text(encoding="utf-8")
    headers = page_headers(html)
    app.mount(f"{PREFIX}/static", _Assets(directory=CONSOLE_DIR / "static"), name="console-static")

    async def page() -> HTMLResponse:
        return HTMLResponse(html, headers=headers)

    async def root() -> RedirectResponse:
        return RedirectResponse(f"{PREFIX}/", status_code=307)

    app.add_api_route("/", root, methods=["GET"], include_in_schema=False)
    app.add_api_route(PREFIX, page, methods=["GET"], include_in_schema=False)
    app.add_api_route(PREFIX + "/{path:path}", page, methods=["GET"], include_in_schema=False)
