"""A database that goes away under a request answers 503 ``database_unavailable`` with
Retry-After, never 500: SQLAlchemy's OperationalError and InterfaceError and psycopg's own
(found by `giftwave chaos --restart-postgres`, where a gift answered 500 while PostgreSQL
restarted)."""

from __future__ import annotations

import asyncio

import httpx
import psycopg
import pytest
from fastapi import FastAPI, Request, Response
from sqlalchemy.exc import InterfaceError, OperationalError

from giftwave.api.problems import install_problem_handlers

AWAY = {
    "sqlalchemy-operational": OperationalError("SELECT 1", {}, Exception("server closed")),
    "sqlalchemy-interface": InterfaceError("SELECT 1", {}, Exception("connection closed")),
    "psycopg-operational": psycopg.OperationalError("the connection is lost"),
}


def _get(app: FastAPI, path: str) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            return await http.get(path)

    return asyncio.run(go())


@pytest.fixture(scope="module")
def app() -> FastAPI:
    app = FastAPI()

    async def missing_page(request: Request) -> Response:
        return Response("not here", status_code=404)

    install_problem_handlers(app, missing_page=missing_page)

    @app.get("/away/{kind}")
    async def away(kind: str) -> None:
        raise AWAY[kind]

    @app.get("/bug")
    async def bug() -> None:
        raise RuntimeError("a bug")

    return app


@pytest.mark.parametrize("kind", sorted(AWAY))
def test_a_lost_database_is_503_with_retry_after(app: FastAPI, kind: str) -> None:
    answer = _get(app, f"/away/{kind}")
    assert answer.status_code == 503
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.headers["retry-after"] == "1"
    body = answer.json()
    assert body["code"] == "database_unavailable"
    assert "server closed" not in str(body)  # the driver's words stay in the log


def test_any_other_error_is_still_a_logged_500_with_the_common_headers(app: FastAPI) -> None:
    answer = _get(app, "/bug")
    assert answer.status_code == 500
    assert answer.json()["code"] == "internal_error"
    # Answered outside every middleware, it still carries the headers every answer does.
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["referrer-policy"] == "strict-origin-when-cross-origin"
