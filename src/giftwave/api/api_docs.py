"""The API's documentation pages, ``/docs`` (Swagger UI) and ``/redoc`` (ReDoc), from this
site's own files: an install without Internet access shows them, and no CDN learns who reads
them or can change the script that runs beside an operator's admin token.

FastAPI writes both pages (``get_swagger_ui_html``, ``get_redoc_html``); the libraries are the
npm packages' dist files in ``web/static/vendor`` (its README). Each page carries a policy of
its own, stricter than none and looser than the other pages' in what these libraries need:
Swagger UI starts from one inline script that FastAPI writes, allowed by its hash (computed
from the page as sent, so no other inline script runs); both libraries set inline styles and
draw images from ``data:`` URLs; ReDoc searches in a worker it makes from a blob.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Final

from fastapi import APIRouter, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse

from giftwave.api.security_headers import CSP, NO_FRAMING

VENDOR: Final = "/static/vendor"
FAVICON: Final = "/static/favicon.svg"
OAUTH2_REDIRECT: Final = "/docs/oauth2-redirect"
_INLINE_SCRIPT: Final = re.compile(r"<script>(.*?)</script>", re.DOTALL)

router = APIRouter(include_in_schema=False)


def docs_policy(html: str) -> str:
    """The Content-Security-Policy of a documentation page: its own inline scripts by hash."""
    hashes = [
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
        for script in _INLINE_SCRIPT.findall(html)
    ]
    directives = (
        "default-src 'self'",
        " ".join(["script-src 'self'", *hashes]),
        "style-src 'self' 'unsafe-inline'",  # both libraries style elements inline
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",  # the OpenAPI document, and "Try it out"
        "worker-src 'self' blob:",  # ReDoc's search
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        f"frame-ancestors {NO_FRAMING}",
    )
    return "; ".join(directives)


def _with_policy(page: HTMLResponse) -> HTMLResponse:
    html = bytes(page.body).decode()
    return HTMLResponse(html, headers={CSP: docs_policy(html)})


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    app = request.app
    return _with_policy(
        get_swagger_ui_html(
            openapi_url=app.openapi_url,
            title=f"{app.title} API",
            swagger_js_url=f"{VENDOR}/swagger-ui-bundle.js",
            swagger_css_url=f"{VENDOR}/swagger-ui.css",
            swagger_favicon_url=FAVICON,
            oauth2_redirect_url=OAUTH2_REDIRECT,
        )
    )


@router.get(OAUTH2_REDIRECT)
async def swagger_ui_redirect() -> HTMLResponse:
    return _with_policy(get_swagger_ui_oauth2_redirect_html())


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    app = request.app
    return _with_policy(
        get_redoc_html(
            openapi_url=app.openapi_url,
            title=f"{app.title} API",
            redoc_js_url=f"{VENDOR}/redoc.standalone.js",
            redoc_favicon_url=FAVICON,
            with_google_fonts=False,  # fonts from Google would tell it who reads the docs
        )
    )
