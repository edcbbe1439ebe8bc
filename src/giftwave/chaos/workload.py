"""The campaign's clients. Each one behaves like a careful real client: every value-moving
request carries an idempotency key, an answer that never came is retried with the same key on
another node (HAProxy's job in production; here the client walks the node list itself), and
every operation ends in the journal as ok (with its receipt), refused (with its code) or
unknown (no answer after every attempt).

A 5xx other than ``503`` with ``Retry-After`` is recorded as a defect: during an outage or a
drain the house answers 503 and says when to come back; anything else is a bug.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import hashlib
import hmac
import itertools
import random
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

import httpx
import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from giftwave.payments.sandbox import SIGNATURE_HEADER, WEBHOOK_PATH
from giftwave.payments.signing import signature_header

GIFT_ID: Final = "sunglasses"  # cannot combo: one gift, one final event, combo_id == send_id
REQUEST_TIMEOUT_S: Final = 2.0  # a paused node must not hold a client for its whole pause
ATTEMPTS: Final = 8  # per operation, over the nodes in turn
RETRY_PAUSE_S: Final = 0.25
TOPUP_COINS: Final = 20_000
PASSWORD: Final = "chaos-password"


class Outcome(enum.Enum):
    OK = "ok"
    REFUSED = "refused"
    UNKNOWN = "unknown"


@dataclass(slots=True)
class Op:
    """One operation as its client saw it."""

    kind: str  # gift_rest, gift_ws, topup, payout, approve
    user_id: int
    key: str
    outcome: Outcome = Outcome.UNKNOWN
    code: str | None = None
    receipt: dict[str, Any] | None = None
    started_s: float = 0.0
    ended_s: float = 0.0
    attempts: int = 0
    coins: int = 0  # top-up coins asked for; a gift's price comes from its receipt
    ref: str = ""  # a top-up's order id and session; a payout's id


@dataclass(slots=True)
class Person:
    user_id: int
    token: str
    handle: str


@dataclass(slots=True)
class Journal:
    """Everything every client did, and the 5xx answers that should not have been."""

    t0: float = field(default_factory=time.monotonic)
    ops: list[Op] = field(default_factory=list)
    bad_5xx: list[str] = field(default_factory=list)
    inconsistent: list[str] = field(default_factory=list)  # a key answered two receipts
    retried_503: int = 0

    def now(self) -> float:
        return time.monotonic() - self.t0


class Cluster:
    """The nodes' addresses and which one each client tries next."""

    def __init__(self, bases: list[str]) -> None:
        self.bases = bases
        self._turn = itertools.count()

    def pick(self) -> str:
        return self.bases[next(self._turn) % len(self.bases)]


class NoAnswer(Exception):
    """No definite answer from any node after every attempt."""


async def call(
    client: httpx.AsyncClient,
    cluster: Cluster,
    journal: Journal,
    method: str,
    path: str,
    *,
    body: Any = None,
    content: bytes | None = None,
    headers: dict[str, str] | None = None,
    op: Op | None = None,
    attempts: int = ATTEMPTS,
) -> httpx.Response:
    """One request, retried (same body, same key) on the next node until a node answers
    something definite: a 2xx or a 4xx. 503 with Retry-After is an honest "later"."""
    for _ in range(attempts):
        if op is not None:
            op.attempts += 1
        base = cluster.pick()
        try:
            r = await client.request(
                method, base + path, json=body, content=content, headers=headers
            )
        except httpx.HTTPError:
            await asyncio.sleep(RETRY_PAUSE_S)
            continue
        if r.status_code < 500:
            return r
        if r.status_code == 503 and "retry-after" in r.headers:
            journal.retried_503 += 1
        else:
            journal.bad_5xx.append(f"{r.status_code} {method} {path}: {r.text[:200]}")
        await asyncio.sleep(RETRY_PAUSE_S)
    raise NoAnswer(path)


async def _post(
    client: httpx.AsyncClient,
    cluster: Cluster,
    journal: Journal,
    op: Op,
    path: str,
    *,
    headers: dict[str, str],
    body: Any = None,
) -> httpx.Response | None:
    """``op``'s POST, through ``call``; None when no node answered: ``op`` then ends unknown."""
    try:
        return await call(client, cluster, journal, "POST", path, body=body, headers=headers, op=op)
    except NoAnswer:
        op.outcome, op.ended_s = Outcome.UNKNOWN, journal.now()
        return None


def _code(r: httpx.Response) -> str:
    try:
        return str(r.json().get("code", r.status_code))
    except ValueError:
        return str(r.status_code)


async def register(
    client: httpx.AsyncClient, cluster: Cluster, journal: Journal, handle: str, role: str
) -> Person:
    r = await call(
        client,
        cluster,
        journal,
        "POST",
        "/v1/auth/register",
        body={
            "handle": handle,
            "email": f"{handle}@chaos.invalid",
            "password": PASSWORD,
            "birth_date": "1990-01-01",
            "country": "US",
            "role": role,
        },
    )
    r.raise_for_status()
    return Person(int(r.json()["user"]["id"]), str(r.json()["token"]), handle)


def _auth(person: Person) -> dict[str, str]:
    return {"Authorization": f"Bearer {person.token}"}


# --- gifts ---------------------------------------------------------------------------------


async def gift_rest(
    client: httpx.AsyncClient, cluster: Cluster, journal: Journal, who: Person, stream_id: str
) -> Op:
    op = Op("gift_rest", who.user_id, "r" + secrets.token_hex(8), started_s=journal.now())
    journal.ops.append(op)
    await resend_gift(client, cluster, journal, who, stream_id, op)
    return op


async def resend_gift(
    client: httpx.AsyncClient,
    cluster: Cluster,
    journal: Journal,
    who: Person,
    stream_id: str,
    op: Op,
) -> None:
    """Send (or send again, with the same key) the gift of ``op`` and record its outcome."""
    path = f"/v1/streams/{stream_id}/gifts"
    body = {"gift_id": GIFT_ID, "count": 1, "idempotency_key": op.key}
    r = await _post(client, cluster, journal, op, path, body=body, headers=_auth(who))
    if r is None:
        return
    _settle(op, r.status_code == 201, r.json(), _code(r), journal)


def _consistent(first: dict[str, Any], again: dict[str, Any]) -> bool:
    """Whether two receipts for one key say the same about their operation: the fields both
    carry (a socket's receipt also names the sender), but the balance, which is today's."""
    shared = (first.keys() & again.keys()) - {"balance_coins"}
    return all(first[k] == again[k] for k in shared)


def _settle(op: Op, ok: bool, body: Any, code: str | None, journal: Journal) -> None:
    receipt = body if ok else None
    if op.receipt is not None and receipt is not None and not _consistent(op.receipt, receipt):
        # The same key answered two different receipts: a retry that is not consistent.
        journal.inconsistent.append(f"{op.kind} {op.key}: {op.receipt} then {receipt}")
    op.outcome = Outcome.OK if ok else Outcome.REFUSED
    op.receipt, op.code = receipt, None if ok else code
    op.ended_s = journal.now()


class SocketGifter:
    """Gifts over one room socket; a socket that dies (its node killed or paused) is opened
    again on the next node with a fresh ticket, and the unanswered gift goes again, same key."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        cluster: Cluster,
        journal: Journal,
        who: Person,
        stream_id: str,
    ) -> None:
        self._client, self._cluster, self._journal = client, cluster, journal
        self._who, self._stream_id = who, stream_id
        self._ws: ClientConnection | None = None
        self._ids = itertools.count(1)

    async def _open(self) -> ClientConnection:
        r = await call(
            self._client,
            self._cluster,
            self._journal,
            "POST",
            f"/v1/streams/{self._stream_id}/ws-ticket",
            headers=_auth(self._who),
        )
        r.raise_for_status()
        base = self._cluster.pick().replace("http://", "ws://")
        ticket = r.json()["ticket"]
        url = f"{base}/v1/streams/{self._stream_id}/ws?ticket={ticket}"
        return await asyncio.wait_for(connect(url, open_timeout=REQUEST_TIMEOUT_S), 3.0)

    async def send(self) -> Op:
        op = Op("gift_ws", self._who.user_id, "w" + secrets.token_hex(8))
        op.started_s = self._journal.now()
        self._journal.ops.append(op)
        for _ in range(ATTEMPTS):
            op.attempts += 1
            try:
                if self._ws is None:
                    self._ws = await self._open()
                reply = await asyncio.wait_for(self._ask(op.key), REQUEST_TIMEOUT_S * 2)
            except (OSError, TimeoutError, WebSocketException, NoAnswer, httpx.HTTPError):
                await self._drop()
                await asyncio.sleep(RETRY_PAUSE_S)
                continue
            if "result" in reply:
                _settle(op, True, reply["result"], None, self._journal)
                return op
            code = str(reply.get("error", {}).get("code"))
            if code == "draining":  # nothing billed: again, on another node
                await self._drop()
                continue
            _settle(op, False, None, code, self._journal)
            return op
        op.outcome, op.ended_s = Outcome.UNKNOWN, self._journal.now()
        return op

    async def _ask(self, key: str) -> dict[str, Any]:
        assert self._ws is not None
        ack = next(self._ids)
        command = {
            "id": ack,
            "cmd": "send_gift",
            "gift_id": GIFT_ID,
            "count": 1,
            "idempotency_key": key,
        }
        await self._ws.send(orjson.dumps(command).decode())
        while True:  # frames of the room come in between; bounded by the caller's timeout
            message = orjson.loads(await self._ws.recv())
            if message.get("ack") == ack:
                return dict(message)

    async def _drop(self) -> None:
        if self._ws is not None:
            ws, self._ws = self._ws, None
            with contextlib.suppress(OSError, TimeoutError, WebSocketException):
                await asyncio.wait_for(ws.close(), 1.0)

    async def close(self) -> None:
        await self._drop()


# --- top-ups through the sandbox provider's signed webhooks -------------------------------


@dataclass(slots=True)
class Webhooks:
    """Signed sandbox events, delivered out of order and more than once."""

    secret: str
    pending: list[tuple[Op, bytes]] = field(default_factory=list)

    def event(self, op: Op, session_id: str) -> bytes:
        mac = hmac.new(self.secret.encode(), session_id.encode(), hashlib.sha256).hexdigest()
        return orjson.dumps(
            {
                "id": "evt_chaos_" + secrets.token_hex(8),
                "type": "payment.succeeded",
                "data": {
                    "payment_id": "pi_sb_" + mac[:24],
                    "order_id": op.ref,
                    "amount_minor": op.receipt["amount_minor"] if op.receipt else 0,
                    "currency": "USD",
                },
            }
        )


async def topup(
    client: httpx.AsyncClient, cluster: Cluster, journal: Journal, who: Person, hooks: Webhooks
) -> Op:
    """Open an order; its payment's webhook is queued, to be delivered later, shuffled."""
    op = Op("topup", who.user_id, "t" + secrets.token_hex(8), started_s=journal.now())
    op.coins = TOPUP_COINS
    journal.ops.append(op)
    body = {"coins": TOPUP_COINS, "idempotency_key": op.key}
    r = await _post(client, cluster, journal, op, "/v1/topups", body=body, headers=_auth(who))
    if r is None:
        return op
    if r.status_code != 201:
        _settle(op, False, None, _code(r), journal)
        return op
    order = r.json()
    op.ref = str(order["id"])
    op.receipt = {"order_id": order["id"], "amount_minor": order["amount_minor"]}
    session_id = urlsplit(str(order["checkout_url"])).path.rsplit("/", 1)[-1]
    hooks.pending.append((op, hooks.event(op, session_id)))
    return op


async def deliver_webhooks(
    client: httpx.AsyncClient,
    cluster: Cluster,
    journal: Journal,
    hooks: Webhooks,
    rng: random.Random,
) -> None:
    """Deliver the queued events shuffled, each twice (a provider's retry after a lost 2xx).
    A top-up is acknowledged once giftwave answered 2xx to its event."""
    batch, hooks.pending = hooks.pending, []
    deliveries = [item for item in batch for _ in range(2)]
    rng.shuffle(deliveries)
    for op, payload in deliveries:
        headers = {
            SIGNATURE_HEADER: signature_header(hooks.secret, payload),
            "Content-Type": "application/json",
        }
        try:
            r = await call(
                client, cluster, journal, "POST", WEBHOOK_PATH, content=payload, headers=headers
            )
        except NoAnswer:
            if op.outcome is not Outcome.OK:
                hooks.pending.append((op, payload))  # the provider keeps retrying
            continue
        if r.is_success:
            op.outcome, op.ended_s = Outcome.OK, journal.now()
        elif op.outcome is not Outcome.OK:
            op.outcome, op.code, op.ended_s = Outcome.REFUSED, _code(r), journal.now()


# --- payouts -------------------------------------------------------------------------------


async def payout(
    client: httpx.AsyncClient,
    cluster: Cluster,
    journal: Journal,
    creator: Person,
    diamonds: int,
    admin_token: str,
) -> Op:
    """A creator cashes out; an operator approves it."""
    op = Op("payout", creator.user_id, "p" + secrets.token_hex(8), started_s=journal.now())
    journal.ops.append(op)
    body = {"diamonds": diamonds, "idempotency_key": op.key}
    r = await _post(client, cluster, journal, op, "/v1/payouts", body=body, headers=_auth(creator))
    if r is None:
        return op
    _settle(op, r.status_code == 201, r.json(), _code(r), journal)
    if op.outcome is Outcome.OK:
        op.ref = str(r.json()["id"])
        await approve(client, cluster, journal, op, admin_token)
    return op


async def approve(
    client: httpx.AsyncClient, cluster: Cluster, journal: Journal, payout_op: Op, token: str
) -> Op:
    op = Op("approve", payout_op.user_id, payout_op.ref, started_s=journal.now())
    journal.ops.append(op)
    path = f"/v1/admin/payouts/{payout_op.ref}/approve"
    r = await _post(
        client, cluster, journal, op, path, headers={"Authorization": f"Bearer {token}"}
    )
    if r is None:
        return op
    _settle(op, r.status_code == 200, r.json(), _code(r), journal)
    return op


# --- viewers -------------------------------------------------------------------------------


@dataclass(slots=True)
class Screen:
    """What one viewer showed: each finished gift by ``combo_id``, following the protocol's
    rule for resuming (docs/protocol.md, "Resuming")."""

    stream_id: str
    shown: dict[str, int] = field(default_factory=dict)  # combo_id -> times shown
    repeats: int = 0  # a final gift sent twice in one epoch's frames: the room counted twice
    resumes: int = 0
    snapshots: int = 0
    epochs: set[str] = field(default_factory=set)
    nodes: set[str] = field(default_factory=set)
    stayed: bool = True  # False: it could not get back into its room for too long
    closed_by_server: int | None = None  # for the viewer that stops reading

    def take(self, frame: dict[str, Any], sent_in_epoch: set[str]) -> None:
        for event in frame.get("events", ()):
            kind = event.get("type")
            if kind == "snapshot":
                self.snapshots += 1
                for gift in event.get("recent_gifts", ()):
                    self._show(str(gift["combo_id"]))
            elif kind == "gift" and event.get("final"):
                combo_id = str(event["combo_id"])
                if combo_id in sent_in_epoch:
                    self.repeats += 1
                sent_in_epoch.add(combo_id)
                self._show(combo_id)

    def _show(self, combo_id: str) -> None:
        if combo_id not in self.shown:
            self.shown[combo_id] = 1


async def watch(
    cluster: Cluster, stream_id: str, screen: Screen, stop: asyncio.Event, lost_after_s: float
) -> None:
    """Watch a room until ``stop``; when the socket drops, resume (since, epoch) on the next
    node. Away longer than ``lost_after_s`` in a row: no longer 'stayed subscribed'."""
    since: int | None = None
    epoch: str | None = None
    away_since: float | None = None
    while not stop.is_set():
        base = cluster.pick()
        url = base.replace("http://", "ws://") + f"/v1/streams/{stream_id}/ws"
        if since is not None and epoch is not None:
            url += f"?since={since}&epoch={epoch}"
        try:
            async with connect(url, open_timeout=REQUEST_TIMEOUT_S, max_size=2**22) as ws:
                away_since = None
                screen.nodes.add(base)
                sent_in_epoch: set[str] = set()
                while not stop.is_set():
                    try:
                        raw = await asyncio.wait_for(ws.recv(), 0.5)
                    except TimeoutError:
                        continue
                    frame = orjson.loads(raw)
                    if frame.get("epoch") != epoch:
                        sent_in_epoch = set()
                        epoch = str(frame.get("epoch"))
                        screen.epochs.add(epoch)
                    since = int(frame.get("seq", 0))
                    screen.take(frame, sent_in_epoch)
        except (OSError, TimeoutError, WebSocketException):
            pass
        if stop.is_set():
            return
        screen.resumes += 1
        now = time.monotonic()
        away_since = away_since or now
        if now - away_since > lost_after_s:
            screen.stayed = False
        await asyncio.sleep(0.2)


async def stop_reading(base: str, stream_id: str, screen: Screen, stop: asyncio.Event) -> None:
    """A viewer that opens the room and never reads: the node must shed it, not wait on it."""
    url = base.replace("http://", "ws://") + f"/v1/streams/{stream_id}/ws"
    screen.stayed = False  # not a viewer whose screen is checked
    try:
        async with connect(url, open_timeout=REQUEST_TIMEOUT_S, max_queue=1) as ws:
            await stop.wait()
            if ws.close_code is not None:
                screen.closed_by_server = ws.close_code
    except (OSError, TimeoutError, WebSocketException):
        pass


# --- webhook endpoints that fail -------------------------------------------------------------


async def failing_endpoint(mode: str) -> asyncio.Server:
    """A creator's webhook endpoint that answers 500 (``fail``) or never answers (``hang``)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5.0)
            if mode == "fail":
                writer.write(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
            else:
                await asyncio.wait_for(reader.read(), 30.0)  # until giftwave gives up
        except (OSError, asyncio.IncompleteReadError, TimeoutError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:
            return  # the campaign is over: a hanging endpoint has nothing left to finish
        finally:
            writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)
