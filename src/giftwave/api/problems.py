"""Every error the API answers is RFC 9457 problem+json with a stable ``code``.

Bad input is a 4xx with a code a client can switch on; a 500 means a bug, never bad input.
Every route documents those answers in OpenAPI (``PROBLEM_RESPONSES``, the ``Problem`` schema,
whose ``code`` is an enum of every member of ``giftwave.errors.Code``), so a client generated
from /openapi.json knows them and the answers keep to the schema.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Awaitable, Callable
from typing import Any, Final

import psycopg
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import DataError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import HTTPConnection

from giftwave.api.security_headers import COMMON_HEADERS
from giftwave.errors import Code, DomainError, RateLimited, Unavailable
from giftwave.ledger.engine import EngineStopped, LedgerUnavailable
from giftwave.ledger.errors import AccountConflict, AccountNotFound, InvalidAccount, LedgerError
from giftwave.logs import REQUEST_ID
from giftwave.payments.base import WebhookRejected

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
_STATUS_BY_ERROR: dict[type[LedgerError], int] = {
    InvalidAccount: 422,
    AccountNotFound: 404,
    AccountConflict: 409,
}


# The framework's own refusals (no route, wrong method, ...), each with its code.
_HTTP_CODES: Final = {
    404: Code.NOT_FOUND,
    405: Code.METHOD_NOT_ALLOWED,
    413: Code.PAYLOAD_TOO_LARGE,
    415: Code.UNSUPPORTED_MEDIA_TYPE,
}


class ProblemDetails(BaseModel):
    """The body of every error (RFC 9457); members beyond these are extensions of one code."""

    model_config = ConfigDict(extra="allow", title="Problem")
    type: str = Field(description="a URI naming the problem type: the code under giftwave.dev")
    title: str
    status: int = Field(ge=400, le=599, description="the HTTP status, repeated")
    detail: str = Field(description="for people; may change, do not parse it")
    code: Code = Field(description="stable: switch on this")
    request_id: str | None = Field(
        default=None, description="the request's X-Request-ID: quote it to the operator"
    )


PROBLEM_SCHEMA: Final = "Problem"
PROBLEM_CODE_SCHEMA: Final = "ProblemCode"
_PROBLEM_CODE_REF: Final = f"#/components/schemas/{PROBLEM_CODE_SCHEMA}"
_PROBLEM_REF: Final = {"$ref": f"#/components/schemas/{PROBLEM_SCHEMA}"}
# What the handlers below can answer on any route: the domain's errors surface wherever a
# route reaches the domain, and authentication is checked before the route's own rules.
_MEANINGS: Final = {
    400: "Bad request (a webhook that fails verification, an API key without a user, ...)",
    401: "Unauthorized: no, unknown or expired credentials",
    402: "Payment required: not enough coins or diamonds",
    403: "Forbidden: valid credentials, not allowed (role, scope, blocked, CSRF)",
    404: "Not found (also what is not yours to see)",
    409: "Conflict: an idempotency key reused differently, or a state clash",
    422: "Unprocessable: the request does not match the schema, or the rules refuse it",
    429: "Too many requests: come back after Retry-After seconds",
    503: "Unavailable: a dependency or the ledger is busy or stopping; retry the same request",
}
PROBLEM_RESPONSES: Final[dict[int | str, dict[str, Any]]] = {
    status: {"description": meaning, "content": {PROBLEM_JSON: {"schema": _PROBLEM_REF}}}
    for status, meaning in _MEANINGS.items()
}


class Problem(Exception):
    """Raise from a route to answer with a problem document."""

    def __init__(self, status: int, code: Code, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.extra = status, code, detail, extra


def problem_response(
    status: int, code: Code, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body = {
        "type": f"https://giftwave.dev/problems/{code}",
        "title": code.replace("_", " ").capitalize(),
        "status": status,
        "detail": detail,
        "code": code,
        **extra,
    }
    request_id = REQUEST_ID.get()
    if request_id is not None:  # what to quote to an operator, who finds it in the logs
        body["request_id"] = request_id
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def problem_schemas() -> dict[str, Any]:
    """The ``Problem`` schema and ``ProblemCode``, the enum of every code, as OpenAPI
    components (the second referenced from the first's ``code``)."""
    problem = ProblemDetails.model_json_schema()
    codes = problem.pop("$defs").pop(Code.__name__)  # the one definition the model refers to
    codes["description"] = "every stable problem code (giftwave.errors.Code); never renamed"
    problem["properties"]["code"]["$ref"] = _PROBLEM_CODE_REF
    return {PROBLEM_SCHEMA: problem, PROBLEM_CODE_SCHEMA: codes}


def _document_problems(app: FastAPI) -> None:
    """Every route lists the problem answers; /openapi.json carries the schema they name."""
    # Routes merge their router's responses when added: this must run before any route is.
    assert not any(getattr(r, "include_in_schema", False) for r in app.router.routes), (
        "document the problems before adding routes"
    )
    app.router.responses = {**PROBLEM_RESPONSES, **app.router.responses}
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            schemas.update(problem_schemas())
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


_CONTROL_CHARS: Final = re.compile(r"[\x00-\x1f\x7f]")


def sane_path_param(value: str) -> bool:
    """No id has control characters: such a path names nothing, and must not reach the
    database (PostgreSQL refuses NUL in text: a 500). Lengths and shapes are each route's
    own rule, answered with its own code (``stream_not_found``, ...)."""
    return not _CONTROL_CHARS.search(value)


async def _sane_path_params(request: HTTPConnection) -> None:
    for name, value in request.path_params.items():
        if isinstance(value, str) and not sane_path_param(value):
            raise Problem(404, Code.NOT_FOUND, f"no such {name}")


def _wants_page(request: Request) -> bool:
    """A person's browser asking for an address that is not there: a friendly page, not JSON."""
    return (
        request.method in ("GET", "HEAD")
        and not request.url.path.startswith(("/v1/", "/static/"))
        and "text/html" in request.headers.get("accept", "")
    )


# The page a browser gets for an address that is not there (web/pages/site.py draws it; pages
# import this module, so it is handed in rather than imported).
MissingPage = Callable[[Request], Awaitable[Response]]


def install_problem_handlers(app: FastAPI, *, missing_page: MissingPage) -> None:
    """The handlers, the documentation of what they answer, and the path check every route
    gets: call before adding routes, which take the app router's responses and dependencies.
    ``missing_page``: what a browser gets instead of a 404 problem."""
    _document_problems(app)
    app.router.dependencies.append(Depends(_sane_path_params))

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
            422, Code.INVALID_REQUEST, "the request does not match the schema", errors=errors
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404 and _wants_page(request):
            return await missing_page(request)
        code = _HTTP_CODES.get(exc.status_code, Code.HTTP_ERROR)
        return problem_response(exc.status_code, code, str(exc.detail))

    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        headers = None
        retry_after_s = exc.retry_after_s if isinstance(exc, RateLimited | Unavailable) else None
        if retry_after_s is not None:
            headers = {"Retry-After": str(max(1, math.ceil(retry_after_s)))}
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
            Code.LEDGER_UNAVAILABLE,
            "the ledger could not commit; retry with the same ids",
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(EngineStopped)
    async def _stopped(_: Request, exc: EngineStopped) -> JSONResponse:
        return problem_response(503, Code.SHUTTING_DOWN, str(exc), headers={"Retry-After": "1"})

    @app.exception_handler(DataError)
    async def _data(_: Request, exc: DataError) -> JSONResponse:
        # The database refused a value the schema let through (PostgreSQL text cannot hold a
        # NUL byte, say). The transaction rolled back: nothing was written.
        log.info("database refused a value: %s", exc.orig)
        return problem_response(
            422, Code.INVALID_VALUE, "a value in the request cannot be stored (control characters?)"
        )

    async def _database_away(_: Request, exc: Exception) -> JSONResponse:
        # The database went away under the request (a restart, a failover, a lost connection;
        # SQLite's lock wait running out): nothing was committed by this request's own
        # transaction, and a retry with the same idempotency key is safe. Found by
        # `giftwave chaos --restart-postgres`, where one gift answered 500.
        log.warning("database unavailable: %s", exc)
        return problem_response(
            503,
            Code.DATABASE_UNAVAILABLE,
            "the database is unavailable for a moment; retry with the same idempotency key",
            headers={"Retry-After": "1"},
        )

    for away in (OperationalError, InterfaceError, psycopg.OperationalError):
        app.add_exception_handler(away, _database_away)

    @app.exception_handler(Exception)
    async def _bug(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        # Starlette answers this from its outermost middleware, outside SecurityHeaders: the
        # headers every answer carries are added here.
        return problem_response(
            500,
            Code.INTERNAL_ERROR,
            "an internal error occurred; it has been logged",
            headers={name.decode(): value.decode() for name, value in COMMON_HEADERS},
        )
