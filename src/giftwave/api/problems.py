"""Every error the API answers is RFC 9457 problem+json with a stable ``code``.

Bad input is a 4xx with a code a client can switch on; a 500 means a bug, never bad input.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from giftwave.errors import DomainError, RateLimited
from giftwave.ledger.engine import EngineStopped, LedgerUnavailable
from giftwave.ledger.errors import AccountConflict, AccountNotFound, InvalidAccount, LedgerError
from giftwave.payments.base import WebhookRejected

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
_STATUS_BY_ERROR: dict[type[LedgerError], int] = {
    InvalidAccount: 422,
    AccountNotFound: 404,
    AccountConflict: 409,
}


class Problem(Exception):
    """Raise from a route to answer with a problem document."""

    def __init__(self, status: int, code: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.extra = status, code, detail, extra


def problem_response(
    status: int, code: str, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body = {
        "type": f"https://giftwave.dev/problems/{code}",
        "title": code.replace("_", " ").capitalize(),
        "status": status,
        "detail": detail,
        "code": code,
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(_: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc.status, exc.code, exc.detail, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "loc": [str(p) for p in e.get("loc", ())],
                "msg": str(e.get("msg", "")),
                "type": str(e.get("type", "")),
            }
            for e in exc.errors()
        ]
        return problem_response(
            422, "invalid_request", "the request does not match the schema", errors=errors
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {
            404: "not_found",
            405: "method_not_allowed",
            413: "payload_too_large",
            415: "unsupported_media_type",
        }.get(exc.status_code, "http_error")
        return problem_response(exc.status_code, code, str(exc.detail))

    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        headers = None
        if isinstance(exc, RateLimited):
            headers = {"Retry-After": str(max(1, round(exc.retry_after_s)))}
        return problem_response(exc.status, exc.code, exc.detail, headers=headers, **exc.extra)

    @app.exception_handler(WebhookRejected)
    async def _webhook(_: Request, exc: WebhookRejected) -> JSONResponse:
        return problem_response(400, exc.code, exc.detail)

    @app.exception_handler(LedgerError)
    async def _ledger(_: Request, exc: LedgerError) -> JSONResponse:
        return problem_response(_STATUS_BY_ERROR.get(type(exc), 400), exc.code, str(exc))

    @app.exception_handler(LedgerUnavailable)
    async def _unavailable(_: Request, exc: LedgerUnavailable) -> JSONResponse:
        return problem_response(
            503,
            "ledger_unavailable",
            "the ledger could not commit; retry with the same ids",
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(EngineStopped)
    async def _stopped(_: Request, exc: EngineStopped) -> JSONResponse:
        return problem_response(503, "shutting_down", str(exc), headers={"Retry-After": "1"})

    @app.exception_handler(Exception)
    async def _bug(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return problem_response(
            500, "internal_error", "an internal error occurred; it has been logged"
        )
