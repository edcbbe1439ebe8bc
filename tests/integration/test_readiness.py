"""`/readyz` against a real server: ready when everything answers; 503 `not_ready` naming the
check that failed when the schema moves under it (a newer release migrated) or its Redis is
away, while `/healthz` stays 200 (alive: restarting would not help)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Final

import httpx
from serverproc import ServerGroup, free_port, giftwave_env, migrate
from sqlalchemy import text

from giftwave.db.engine import make_engine
from giftwave.db.urls import DatabaseUrl, parse_database_url

CACHE_S: Final = 1.0  # readiness.CACHE_S: a changed state shows after it
WAIT_S: Final = 10.0


def _ready(base_url: str, host: str | None = None) -> httpx.Response:
    headers = {"Host": host} if host else {}
    return httpx.get(f"{base_url}/readyz", headers=headers, trust_env=False, timeout=5.0)


def _until(base_url: str, status: int) -> dict[str, Any]:
    """Poll /readyz until it answers ``status`` (bounded); its body."""
    deadline = time.monotonic() + WAIT_S
    while True:
        r = _ready(base_url)
        if r.status_code == status or time.monotonic() > deadline:
            assert r.status_code == status, r.text
            body: dict[str, Any] = r.json()
            return body
        time.sleep(0.2)


def _set_revision(db: DatabaseUrl, revision: str) -> str:
    engine = make_engine(db)
    try:
        with engine.begin() as conn:
            before = str(conn.execute(text("SELECT version_num FROM alembic_version")).scalar())
            conn.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
    finally:
        engine.dispose()
    return before


def test_readyz_names_a_schema_that_moved(bare_db_url: DatabaseUrl, tmp_path: Path) -> None:
    env = giftwave_env(bare_db_url)
    migrate(env)
    with ServerGroup(tmp_path, env) as servers:
        [node] = servers.start("node")
        ready = _until(node.base_url, 200)
        assert ready["status"] == "ready"
        assert set(ready["checks"].values()) == {"ok"}
        assert _ready(node.base_url, host="10.1.2.3:8000").status_code == 200  # by address

        head = _set_revision(bare_db_url, "9999_from_a_newer_release")
        body = _until(node.base_url, 503)
        assert body["code"] == "not_ready"
        assert body["checks"]["database"] == "schema_out_of_date"
        assert body["checks"]["ledger_writer"] == "ok"
        assert httpx.get(f"{node.base_url}/healthz", trust_env=False).status_code == 200

        _set_revision(bare_db_url, head)
        assert _until(node.base_url, 200)["status"] == "ready"


def test_readyz_names_a_broker_that_is_away(tmp_path: Path) -> None:
    db = parse_database_url(f"sqlite:///{tmp_path / 'gw.db'}")
    env = giftwave_env(db)
    env["GIFTWAVE_BROKER_URL"] = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    migrate(env)
    with ServerGroup(tmp_path, env) as servers:
        [node] = servers.start("node")
        r = _ready(node.base_url)
        assert r.status_code == 503, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["checks"]["broker"] == "unreachable"
        assert r.json()["checks"]["database"] == "ok"
        assert "broker" in r.json()["detail"]
