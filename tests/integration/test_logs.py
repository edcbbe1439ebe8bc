"""Logs an operator can use, from a real ``giftwave serve`` (JSON lines on stderr), on SQLite
and PostgreSQL: every line one JSON object; a request id per HTTP request and WebSocket,
echoed, in problem bodies and on the lines written while serving it (the gift fast lane
included); HTTP metrics by route template; one audit line per money event; and no credential
in the log of a server that handled log-ins, tickets, top-ups, API keys and webhooks.

One server per backend serves a whole evening of the economy (``evening``), once; each test
reads what it needs from that evening's log and answers.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final

import httpx
import orjson
import pytest
import websockets
from economy_client import AppFactory, economy_app, payout_quickly_reviewed, register
from prometheus_client.parser import text_string_to_metric_families
from serverproc import ADMIN_TOKEN, ServerGroup, ServerProcess, free_port, giftwave_env, migrate

from giftwave.api.state import app_services
from giftwave.db.urls import DatabaseUrl
from giftwave.logs import AUDIT_LOGGER

__all__ = ["economy_app"]

ADMIN: Final = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
PASSWORD: Final = "Tr0ub4dor-and-3-horses"
METRICS_TOKEN: Final = "metrics-" + secrets.token_hex(12)
SANDBOX_SECRET: Final = "sandbox-" + secrets.token_hex(12)
STRIPE_KEY: Final = "sk_test_" + secrets.token_hex(12)
GIFT_RID: Final = "gift.rid-1"
WS_RID: Final = "ws_rid-2"
PROBLEM_RID: Final = "problem-rid-3"
GIFT_TEMPLATE: Final = "/v1/streams/{stream_id}/gifts"
GENERATED_RID: Final = re.compile(r"[0-9a-f]{16}")


@dataclass
class Person:
    id: int
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Evening:
    """What happened on the server, for the tests to find in its log and answers."""

    server: ServerProcess
    secrets: list[str] = field(default_factory=list)
    answers: dict[str, httpx.Response] = field(default_factory=dict)
    ids: dict[str, Any] = field(default_factory=dict)
    ws_header: str | None = None
    gifts_sent: int = 0

    def lines(self) -> list[dict[str, Any]]:
        """Every line of the server's log, parsed; a line that is not JSON fails the test."""
        parsed = []
        for line in self.server.log_text().splitlines():
            if line.startswith("--- "):  # serverproc's own header line
                continue
            parsed.append(orjson.loads(line))
        return parsed

    def audit(self, event: str) -> list[dict[str, Any]]:
        return [
            line
            for line in self.lines()
            if line["logger"] == "giftwave.audit" and line["msg"] == event
        ]


async def _register(http: httpx.AsyncClient, role: str, n: int) -> Person:
    r = await http.post(
        "/v1/auth/register",
        json={
            "handle": f"{role[:4]}log{n}",
            "email": f"{role}{n}@logs.test",
            "password": PASSWORD,
            "birth_date": "1990-01-01",
            "country": "US",
            "role": role,
        },
    )
    assert r.status_code == 201, r.text
    return Person(int(r.json()["user"]["id"]), str(r.json()["token"]))


async def _buy(http: httpx.AsyncClient, who: Person, key: str) -> dict[str, Any]:
    packages = (await http.get("/v1/coin-packages")).json()
    package = next(p for p in packages if p["coins"] == 700)
    r = await http.post(
        "/v1/topups",
        json={"package_id": package["id"], "idempotency_key": key},
        headers=who.auth,
    )
    assert r.status_code == 201, r.text
    order: dict[str, Any] = r.json()
    await _sandbox(http, order, "pay")
    return order


async def _sandbox(http: httpx.AsyncClient, order: dict[str, Any], action: str) -> None:
    session = order["checkout_url"].rsplit("/", 1)[1]
    r = await http.post(
        f"/sandbox/checkout/{session}/{action}", headers={"Accept": "application/json"}
    )
    assert r.status_code == 200, r.text


async def _gift(
    ev: Evening, http: httpx.AsyncClient, who: Person, stream: str, count: int, **headers: str
) -> httpx.Response:
    ev.gifts_sent += 1
    return await http.post(
        f"/v1/streams/{stream}/gifts",
        json={"gift_id": "rose", "count": count, "idempotency_key": f"g{ev.gifts_sent}"},
        headers={**who.auth, **headers},
    )


async def _diamonds(http: httpx.AsyncClient, who: Person) -> int:
    r = await http.get("/v1/me/wallet", headers=who.auth)
    assert r.status_code == 200, r.text
    return int(r.json()["diamonds"])


async def _payout(http: httpx.AsyncClient, creator: Person, diamonds: int, key: str) -> str:
    r = await http.post(
        "/v1/payouts", json={"diamonds": diamonds, "idempotency_key": key}, headers=creator.auth
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def _money(ev: Evening, http: httpx.AsyncClient) -> None:
    """Every money event of the audit table, each once."""
    viewer = await _register(http, "viewer", 1)
    creator = await _register(http, "creator", 2)
    third = await _register(http, "viewer", 3)
    ev.ids.update(viewer=viewer.id, creator=creator.id, third=third.id)
    ev.secrets += [viewer.token, creator.token, third.token, PASSWORD]
    r = await http.post("/v1/auth/login", json={"login": "viewlog1", "password": PASSWORD})
    assert r.status_code == 200, r.text
    ev.secrets.append(r.json()["token"])
    r = await http.post("/v1/streams", json={"title": "logs"}, headers=creator.auth)
    assert r.status_code == 201, r.text
    stream = ev.ids["stream"] = r.json()["id"]

    first = await _buy(http, viewer, "buy-1")  # audit.topup_credited
    ev.ids["first_order"] = first["id"]
    r = await _gift(ev, http, viewer, stream, 700, **{"X-Request-ID": GIFT_RID})
    assert r.status_code == 201, r.text  # the fast lane, all 700 coins spent
    ev.answers["gift"] = r
    ev.ids["reversed_send"] = r.json()["send_id"]
    await _sandbox(http, first, "refund")  # audit.clawback, audit.debt_created (coins)
    second = await _buy(http, viewer, "buy-2")  # audit.topup_credited, audit.debt_settled
    ev.ids["second_order"] = second["id"]

    r = await http.post(  # audit.admin_grant
        f"/v1/admin/users/{viewer.id}/coins",
        json={"coins": 5000, "idempotency_key": "grant-1"},
        headers=ADMIN,
    )
    assert r.status_code == 200, r.text
    for _ in range(4):
        assert (await _gift(ev, http, viewer, stream, 999)).status_code == 201

    rejected = await _payout(http, creator, 10, "po-rejected")  # audit.payout_requested
    r = await http.post(f"/v1/admin/payouts/{rejected}/reject", headers=ADMIN)
    assert r.status_code == 200, r.text  # audit.payout_rejected
    approved = await _payout(http, creator, await _diamonds(http, creator), "po-approved")
    r = await http.post(f"/v1/admin/payouts/{approved}/approve", headers=ADMIN)
    assert r.status_code == 200, r.text  # audit.payout_approved
    ev.ids.update(rejected=rejected, approved=approved)
    # Nothing left to take back: the reversal leaves a diamond debt.
    r = await http.post(f"/v1/admin/gift-sends/{ev.ids['reversed_send']}/reverse", headers=ADMIN)
    assert r.status_code == 200, r.text  # audit.gift_reversed, audit.debt_created (diamonds)
    ev.answers["reversal"] = r
    assert r.json()["diamonds_debt"] > 0, r.text
    assert (await _gift(ev, http, viewer, stream, 999)).status_code == 201
    r = await http.post(  # the new earnings settle the debt first: audit.debt_settled
        "/v1/payouts", json={"diamonds": 1000, "idempotency_key": "po-3"}, headers=creator.auth
    )
    assert r.status_code in (201, 402, 403), r.text

    r = await http.patch(f"/v1/admin/users/{third.id}", json={"role": "creator"}, headers=ADMIN)
    assert r.status_code == 200, r.text  # audit.role_changed
    for status in ("blocked", "active"):  # audit.account_blocked, audit.account_unblocked
        r = await http.patch(f"/v1/admin/users/{third.id}", json={"status": status}, headers=ADMIN)
        assert r.status_code == 200, r.text
    ev.ids.update(viewer_token=viewer.token, creator_token=creator.token)


async def _credentials(ev: Evening, http: httpx.AsyncClient) -> None:
    """Credentials where a careless line would write them: URLs the access log writes, a
    socket's URL uvicorn writes, secrets shown once in answers."""
    viewer = Person(ev.ids["viewer"], ev.ids["viewer_token"])
    stream = ev.ids["stream"]
    ev.secrets += [ADMIN_TOKEN, METRICS_TOKEN, SANDBOX_SECRET, STRIPE_KEY]
    r = await http.post(
        "/v1/admin/api-keys",
        json={"integration": "logs", "scopes": ["wallet:read"]},
        headers=ADMIN,
    )
    assert r.status_code == 201, r.text
    api_key = r.json()["key"]
    ev.secrets.append(api_key)
    await http.get(
        f"/v1/me/wallet?api_key={api_key}", headers={"Authorization": f"Bearer {api_key}"}
    )
    await http.get(f"/v1/me/wallet?token={viewer.token}")
    await http.get(f"/v1/admin/users?q=log&admin_token={ADMIN_TOKEN}", headers=ADMIN)
    r = await http.post(
        "/v1/creators/me/webhooks",
        json={"url": f"http://127.0.0.1:{free_port()}/hook", "events": ["gift"]},
        headers={"Authorization": f"Bearer {ev.ids['creator_token']}"},
    )
    assert r.status_code == 201, r.text
    ev.secrets.append(r.json()["secret"])
    r = await http.post(f"/v1/streams/{stream}/ws-ticket", headers=viewer.auth)
    assert r.status_code == 201, r.text
    ticket = r.json()["ticket"]
    ev.secrets.append(ticket)
    base = ev.server.base_url.replace("http://", "ws://")
    async with websockets.connect(
        f"{base}/v1/streams/{stream}/ws?ticket={ticket}&since=0",
        additional_headers={"X-Request-ID": WS_RID},
    ) as ws:
        assert ws.response is not None
        ev.ws_header = ws.response.headers.get("X-Request-ID")
        await asyncio.wait_for(ws.recv(), 5)
    r = await http.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert r.status_code == 200, r.text
    ev.answers["metrics"] = r


async def _request_ids(ev: Evening, http: httpx.AsyncClient) -> None:
    missing = "st_" + "n" * 12
    viewer = Person(ev.ids["viewer"], ev.ids["viewer_token"])
    ev.answers["problem"] = await _gift(
        ev, http, viewer, missing, 1, **{"X-Request-ID": PROBLEM_RID}
    )
    ev.answers["spaces"] = await http.get("/healthz", headers={"X-Request-ID": "two words"})
    ev.answers["long"] = await http.get("/healthz", headers={"X-Request-ID": "a" * 129})
    ev.answers["longest"] = await http.get("/healthz", headers={"X-Request-ID": "b" * 128})
    ev.answers["none"] = await http.get("/v1/me/wallet")


async def _evening(ev: Evening) -> None:
    async with httpx.AsyncClient(base_url=ev.server.base_url, timeout=30, trust_env=False) as http:
        await _money(ev, http)
        await _credentials(ev, http)
        await _request_ids(ev, http)
    await asyncio.sleep(0.5)  # the last lines reach the file


@pytest.fixture(scope="module")
def evening(
    module_bare_db_url: DatabaseUrl, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Evening]:
    env = giftwave_env(module_bare_db_url)
    env.update(
        GIFTWAVE_PASSWORD_TIME_COST="1",
        GIFTWAVE_PASSWORD_MEMORY_KIB="8",
        GIFTWAVE_LOG_FORMAT="json",
        GIFTWAVE_METRICS_TOKEN=METRICS_TOKEN,
        GIFTWAVE_SANDBOX_WEBHOOK_SECRET=SANDBOX_SECRET,
        GIFTWAVE_STRIPE_API_KEY=STRIPE_KEY,
        GIFTWAVE_WEBHOOK_ALLOW_PRIVATE_ADDRESSES="true",
        GIFTWAVE_PAYOUT_MIN_CENTS="1",
        GIFTWAVE_GIFT_RATE_PER_S="0",
    )
    migrate(env)
    with ServerGroup(tmp_path_factory.mktemp("logs"), env, ("--access-log",)) as group:
        [server] = group.start("a")
        ev = Evening(server)
        asyncio.run(_evening(ev))
        yield ev


def test_every_line_is_one_json_object_with_the_standard_fields(evening: Evening) -> None:
    lines = evening.lines()  # parses every line: a text line fails here
    assert len(lines) > 20
    for line in lines:
        assert {"ts", "level", "logger", "msg"} <= line.keys(), line
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["ts"]), line
    loggers = {line["logger"] for line in lines}
    assert {"uvicorn.error", "uvicorn.access", "giftwave.audit"} <= loggers, loggers


def test_a_request_id_is_echoed_in_headers_problems_and_log_lines(evening: Evening) -> None:
    gift = evening.answers["gift"]
    assert gift.headers["X-Request-ID"] == GIFT_RID  # the gift fast lane
    problem = evening.answers["problem"]
    assert problem.status_code == 404, problem.text
    assert problem.headers["X-Request-ID"] == PROBLEM_RID
    assert problem.json()["request_id"] == PROBLEM_RID
    # An id a client sends that could not go into a header or a log verbatim is replaced.
    for name in ("spaces", "long", "none"):
        assert GENERATED_RID.fullmatch(evening.answers[name].headers["X-Request-ID"]), name
    assert evening.answers["longest"].headers["X-Request-ID"] == "b" * 128
    unauthorized = evening.answers["none"]
    assert unauthorized.json()["request_id"] == unauthorized.headers["X-Request-ID"]
    # Lines written while serving a request carry its id: the fast lane's access line...
    lines = evening.lines()
    [gift_line] = [line for line in lines if line.get("request_id") == GIFT_RID]
    assert "POST /v1/streams/" in gift_line["msg"], gift_line
    assert '" 201' in gift_line["msg"], gift_line
    # ...and the audit line of the top-up the refund clawed back, and the socket's accept.
    assert evening.ws_header == WS_RID
    ws_lines = [line["msg"] for line in lines if line.get("request_id") == WS_RID]
    assert any("[accepted]" in msg for msg in ws_lines), ws_lines


def test_http_metrics_count_every_route_by_its_template(evening: Evening) -> None:
    families = {f.name: f for f in text_string_to_metric_families(evening.answers["metrics"].text)}
    requests = families["giftwave_http_requests"].samples
    gifts = sum(
        s.value
        for s in requests
        if s.labels == {"route": GIFT_TEMPLATE, "method": "POST", "status": "201"}
    )
    assert gifts >= 6, [s for s in requests if s.labels["route"] == GIFT_TEMPLATE]
    routes = {s.labels["route"] for s in requests}
    assert "/v1/auth/register" in routes, routes
    assert "/v1/admin/payouts/{payout_id}/{decision}" in routes, routes
    assert not any(evening.ids["stream"] in r for r in routes), routes  # templates, not paths
    timed = [
        s
        for s in families["giftwave_http_request_duration_seconds"].samples
        if s.name.endswith("_count") and s.labels["route"] == GIFT_TEMPLATE
    ]
    assert len(timed) == 1, timed
    assert timed[0].value >= gifts, timed


def test_no_credential_reaches_the_log(evening: Evening) -> None:
    log = evening.server.log_text()
    assert "/v1/me/wallet?token=[redacted]" in log  # the lines are there, redacted
    assert "ws?ticket=[redacted]&since=0" in log
    assert "api_key=[redacted]" in log
    assert "admin_token=[redacted]" in log
    for secret in evening.secrets:
        assert secret not in log, f"a credential ({secret[:4]}...) is in the log"


def _one(evening: Evening, event: str, **fields: Any) -> dict[str, Any]:
    """The one audit line of ``event`` whose fields include ``fields``."""
    found = [
        line for line in evening.audit(event) if all(line.get(k) == v for k, v in fields.items())
    ]
    assert len(found) == 1, (event, fields, evening.audit(event))
    return found[0]


def test_one_audit_line_per_money_event(evening: Evening) -> None:
    ids = evening.ids
    viewer, creator, third = ids["viewer"], ids["creator"], ids["third"]
    for order in ("first_order", "second_order"):
        line = _one(evening, "audit.topup_credited", order_id=ids[order], user_id=viewer)
        assert line["coins"] == 700, line
        assert line["amount_minor"] > 0, line
        assert line["currency"] == "USD", line
        assert line["provider"] == "sandbox", line
        assert line["payment_id"], line
    clawback = _one(evening, "audit.clawback", order_id=ids["first_order"], cause="refund")
    assert clawback["coins"] == 700, clawback
    assert clawback["amount_minor"] > 0, clawback
    _one(evening, "audit.debt_created", user_id=viewer, asset="COIN", coins=700, cause="refund")
    _one(evening, "audit.debt_settled", user_id=viewer, asset="COIN", coins=700, by="topup")
    _one(evening, "audit.admin_grant", user_id=viewer, coins=5000, by_user_id=None)
    _one(evening, "audit.payout_requested", payout_id=ids["rejected"], diamonds=10)
    _one(evening, "audit.payout_rejected", payout_id=ids["rejected"], creator_id=creator)
    requested = _one(evening, "audit.payout_requested", payout_id=ids["approved"])
    approved = _one(evening, "audit.payout_approved", payout_id=ids["approved"])
    assert approved["diamonds"] == requested["diamonds"] > 0, (requested, approved)
    assert approved["amount_cents"] == requested["amount_cents"] > 0, (requested, approved)
    receipt = evening.answers["reversal"].json()
    reversed_line = _one(evening, "audit.gift_reversed", send_id=ids["reversed_send"])
    assert reversed_line["coins_returned"] == receipt["coins_returned"] == 700, reversed_line
    assert reversed_line["diamonds_debt"] == receipt["diamonds_debt"], reversed_line
    assert reversed_line["sender_id"] == viewer, reversed_line
    assert reversed_line["creator_id"] == creator, reversed_line
    _one(
        evening,
        "audit.debt_created",
        user_id=creator,
        asset="DIAMOND",
        diamonds=receipt["diamonds_debt"],
        cause="gift_reversed",
    )
    _one(evening, "audit.debt_settled", user_id=creator, asset="DIAMOND", by="payout_request")
    _one(evening, "audit.role_changed", user_id=third, role="creator")
    _one(evening, "audit.account_blocked", user_id=third, ledger_frozen=1)
    _one(evening, "audit.account_unblocked", user_id=third, ledger_frozen=0)
    # Nothing logged twice: one line per event (a replay writes none).
    # A payout's decision is one per (payout, actor): the policy's at the request, a person's.
    seen = Counter(
        (line["msg"], line.get("transfer_id"), line.get("payout_id"), line.get("actor"))
        for line in evening.lines()
        if "audit." in line["msg"]
    )
    assert all(n == 1 for n in seen.values()), seen
    for line in evening.lines():
        if line["logger"] == "giftwave.audit":
            assert line["level"] == "INFO", line
            assert "request_id" in line, line


async def test_an_expired_payout_writes_its_audit_line_once(
    economy_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Settings allow a review of a minute at least: the app's own Payouts service with a 1 s
    review (as test_economy_payouts.py does) shows the ledger's expiry writing the line."""
    caplog.set_level(logging.INFO, logger=AUDIT_LOGGER)
    async with economy_app(payout_min_cents=100) as client:
        viewer, creator = await register(client), await register(client, "creator")
        await viewer.buy(700)
        stream = await creator.go_live()
        assert (await viewer.gift(stream, "money_gun")).status_code == 201
        economy: Any = app_services(client.app).economy
        pending = await payout_quickly_reviewed(economy, creator.id, 400, "slow-review")
        deadline = time.monotonic() + 5
        while (await creator.get(f"/v1/payouts/{pending.id}")).json()["status"] == "pending":
            assert time.monotonic() < deadline, "the payout never expired"
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.2)  # a second sweep, which must not write the line again
    expired = [
        r.__dict__["audit"]
        for r in caplog.records
        if r.name == AUDIT_LOGGER and r.getMessage() == "audit.payout_expired"
    ]
    assert [e["payout_id"] for e in expired] == [pending.id], expired
    assert expired[0]["transfer_id"].startswith("expire:"), expired
