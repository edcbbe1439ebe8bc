"""``GET /v1/streams/{id}/ws``: a live room over WebSocket.

Server → client: frames ``{"v":1,"seq":n,"epoch":"…","events":[…]}`` once per tick, and
``{"v":1,"ack":id,"result":{…}}`` or ``{"v":1,"ack":id,"error":{"code":…,"detail":…}}`` for
each command, and ``{"v":1,"personal":{"type":…}}`` for this socket's viewer alone (a spending
reminder after their gift's ack: live/events.py). Client → server:
``{"id":…,"cmd":"send_gift"|"like"|"chat",…}``.

Anyone may watch; acting needs a login: a one-use ``?ticket=`` (``POST
/v1/streams/{id}/ws-ticket``; browsers cannot set headers on a WebSocket, and a session token
in a URL ends up in logs), or the session cookie from a page of an allowed origin
(``api/origins.py``). Reconnect with ``?since=<seq>&epoch=<epoch>`` to get what was missed, or
a snapshot when it is gone.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable
from typing import Any, Final

import orjson
from fastapi import APIRouter, Request, WebSocket, WebSocketDisconnect
from pydantic import BaseModel
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from giftwave.api.auth import (
    SESSION_COOKIE,
    AuthCache,
    SessionUser,
    session_token,
    session_user,
)
from giftwave.api.origins import OriginPolicy
from giftwave.api.room_sockets import open_sink
from giftwave.api.shares import share_cookie
from giftwave.api.state import Services, services
from giftwave.api.streams import receipt
from giftwave.economy.gifting import SendGift
from giftwave.economy.paid_messages import MessageGate
from giftwave.economy.services import Economy
from giftwave.economy.spending_reminders import Reminder
from giftwave.economy.subscriptions import SubscriberBadges
from giftwave.errors import Code, DomainError, Forbidden, Invalid, RateLimited
from giftwave.identity.sessions import token_hash
from giftwave.identity.tickets import TicketUse, issue_ticket, use_ticket
from giftwave.identity.users import User
from giftwave.live import moderation_service, paid_message_service
from giftwave.live.chat_rules import CHAT_RATE, chat_rate_key, chat_text
from giftwave.live.events import (
    ChatDeleted,
    ChatPosted,
    ClubBadge,
    Joined,
    Liked,
    Muted,
    SpendingReminderShown,
    encode_personal_text,
)
from giftwave.live.paid_message_service import SEND_ID_MAX_CHARS
from giftwave.live.streams import Stream, find_stream, get_stream
from giftwave.ratelimit import Rate, RateLimiter
from giftwave.realtime.hub import CLOSE_POLICY, PROTOCOL_VERSION, Hub, Subscriber
from giftwave.social.club_gate import ClubGate
from giftwave.trending.engine import user_actor
from giftwave.trending.service import Trending

router = APIRouter(tags=["live"])

MAX_MESSAGE_BYTES: Final = 4096
LIKES_PER_S: Final = 20.0
# Per user and room (chat, likes) or per user (moderation), across sockets and nodes.
LIKE_RATE: Final = Rate(LIKES_PER_S, int(LIKES_PER_S))
MODERATION_RATE: Final = Rate(5.0, 20)
MAX_REFUSALS: Final = 100  # a socket refused this often is closed: it is flooding
CLOSE_TOO_BIG: Final = 1009
CLOSE_NOT_FOUND: Final = 4404
CLOSE_BAD_TICKET: Final = 4401
JOIN_SAMPLE_ROOM_SIZE: Final = 100
COMMANDS: Final = ("send_gift", "like", "chat", "delete_message", "mute", "hide_paid_message")
GIFTS_IN_FLIGHT: Final = 64  # per socket


def _ack(ack: Any, result: dict[str, Any]) -> str:
    return orjson.dumps({"v": PROTOCOL_VERSION, "ack": ack, "result": result}).decode()


_ERROR_PREFIX: Final = f'{{"v":{PROTOCOL_VERSION},"error":'


def _error(ack: Any, code: Code, detail: str, extra: dict[str, Any] | None = None) -> str:
    # "error" first, so a refusal is recognised by its prefix without parsing it back. The
    # problem's own fields follow code and detail, as on REST (a spending limit's: which one,
    # the limit, what was spent, when it resets).
    error: dict[str, Any] = {"code": code, "detail": detail}
    if extra:
        error.update((k, v) for k, v in extra.items() if k not in error)
    body = {"v": PROTOCOL_VERSION, "error": error, "ack": ack}
    return orjson.dumps(body).decode()


def _int_param(ws: WebSocket, name: str) -> int | None:
    raw = ws.query_params.get(name)
    return int(raw) if raw is not None and raw.isdigit() and len(raw) < 19 else None


class TicketOut(BaseModel):
    ticket: str
    expires_in_s: int


@router.post("/v1/streams/{stream_id}/ws-ticket", status_code=201)
async def socket_ticket(stream_id: str, ws_user: SessionUser, request: Request) -> TicketOut:
    """A ticket that opens this stream's socket as you, once, within seconds (``?ticket=``)."""
    economy: Economy = services(request).economy
    ttl_s = economy.settings.ws_ticket_ttl_s
    token = session_token(request)
    assert token is not None  # a SessionUser came with a session
    session_hash = token_hash(token)  # the socket ends with this session

    def work() -> str:
        with economy.db.begin() as conn:
            get_stream(conn, stream_id)  # stream_not_found
            return issue_ticket(conn, ws_user.id, stream_id, ttl_s, session_hash)

    return TicketOut(ticket=await run_in_threadpool(work), expires_in_s=ttl_s)


# What a command of a socket without a user answers: it is anonymous, or it is a cookie
# socket opened by a page of another site (it watches; it does not act for the visitor).
LOGIN_REQUIRED: Final = (Code.LOGIN_REQUIRED, "log in to send gifts, like or chat")
ORIGIN_NOT_ALLOWED: Final = (
    Code.ORIGIN_NOT_ALLOWED,
    "a page of another site cannot act with your login; open the room on its own site",
)


async def _socket_user(ws: WebSocket, economy: Economy) -> tuple[User | None, tuple[Code, str]]:
    """The cookie's user, if the page's origin may act with it; else None and why not."""
    cookie = ws.cookies.get(SESSION_COOKIE)
    user = None if not cookie else await session_user(ws, cookie)
    if user is None:
        return None, LOGIN_REQUIRED
    settings = economy.settings
    policy = OriginPolicy(settings.public_url, settings.allowed_origins)
    secure = ws.url.scheme == "wss"
    if not policy.may_act(ws.headers.get("origin"), ws.headers.get("host"), secure):
        return None, ORIGIN_NOT_ALLOWED
    return user, LOGIN_REQUIRED


@router.websocket("/v1/streams/{stream_id}/ws")
async def room_socket(ws: WebSocket, stream_id: str) -> None:
    economy: Economy = services(ws).economy
    hub: Hub = services(ws).hub
    ticket = ws.query_params.get("ticket")

    def load_stream() -> tuple[Stream | None, TicketUse | None]:
        if ticket is None:
            with economy.db.connect() as conn:
                return find_stream(conn, stream_id), None
        with economy.db.begin() as conn:  # spent even when the stream is gone
            return find_stream(conn, stream_id), use_ticket(conn, ticket, stream_id)

    stream, used = await run_in_threadpool(load_stream)
    if stream is None:
        await ws.close(code=CLOSE_NOT_FOUND, reason="no such stream")
        return
    session_hash: str | None = None  # the session the socket acts as; it ends with it
    if ticket is None:
        user, refusal = await _socket_user(ws, economy)
        cookie = ws.cookies.get(SESSION_COOKIE)
        if user is not None and cookie:
            session_hash = token_hash(cookie)
    else:
        user = None if used is None else await _ticket_user(ws, used.user_id)
        refusal = LOGIN_REQUIRED
        if user is None or used is None:
            await ws.accept()  # then a close code a page can read (a refused handshake has none)
            await ws.close(code=CLOSE_BAD_TICKET, reason="ticket unknown, used or expired")
            return
        session_hash = used.session_hash
    await ws.accept()
    sink = open_sink(ws, direct=economy.settings.live_direct_writes)
    # A logout (or any end of the session) on any node closes the socket (4401: log in again,
    # or watch anonymously): it may move coins.
    stop_watching = (
        services(ws).auth_cache.on_session_end(
            session_hash, lambda: sink.close(CLOSE_BAD_TICKET, "the session ended")
        )
        if session_hash is not None
        else None
    )
    channel, subscriber = await hub.subscribe(stream_id, sink, None if user is None else user.id)
    try:
        if not stream.live:
            channel.room.end()  # this node's copy only: the end was published when it happened
        since, epoch = _int_param(ws, "since"), ws.query_params.get("epoch")
        missed = channel.replay(since, epoch) if since is not None and epoch else None
        for frame in missed if missed is not None else [channel.snapshot_frame()]:
            sink.write(frame)
        trending: Trending = services(ws).trending
        await trending.viewer(
            stream_id,
            user_actor(user.id)
            if user is not None
            else trending.source_actor(ws.client.host if ws.client else ""),
        )
        badges = services(ws).levels.badges
        if user is not None:  # once per socket: its chat lines read the cache, not the database
            await badges.warm((user.id,))
        if user is not None and _sampled_join(len(channel.subscribers)):
            assert hub.broker is not None
            months = await economy.subscriptions.badges.months(stream.creator_id, user.id)
            club = await services(ws).clubs.gate.badge(stream.creator_id, user.id)
            joined = Joined(
                user_id=user.id,
                handle=user.handle,
                level=hub.level_of(user.id),
                sub_months=months,
                club=club,
            )
            await hub.broker.publish(stream_id, joined)
        if user is not None:  # a share brought them? credit its sharer (docs/sharing.md)
            await services(ws).sharing.joined(user.id, stream_id, share_cookie(ws))
        await _read(ws, economy, hub, stream, user, subscriber, refusal)
    except WebSocketDisconnect:
        pass
    finally:
        if stop_watching is not None:
            stop_watching()
        hub.unsubscribe(stream_id, subscriber)
        await sink.stop()


async def _ticket_user(ws: WebSocket, user_id: int) -> User | None:
    cache: AuthCache = services(ws).auth_cache
    return cache.users.get(user_id) or await cache.user_reads.get(user_id)


def _sampled_join(viewers_here: int) -> bool:
    """Every join in a small room; in a big one about 100 per full room, not one per viewer
    (each would be an event in every viewer's next frame)."""
    every = max(1, viewers_here // JOIN_SAMPLE_ROOM_SIZE)
    return secrets.randbelow(every) == 0


async def _read(
    ws: WebSocket,
    economy: Economy,
    hub: Hub,
    stream: Stream,
    user: User | None,
    subscriber: Subscriber,
    refusal: tuple[Code, str],
) -> None:
    # Per user (and room), whatever the number of sockets or nodes (ratelimit.py).
    limiter: RateLimiter = services(ws).rate_limiter
    refusals = 0
    # Gifts are billed concurrently (a tapping viewer has several in flight, each waiting for
    # its ledger batch); past GIFTS_IN_FLIGHT this socket is not read until one is answered.
    in_flight = asyncio.Semaphore(GIFTS_IN_FLIGHT)
    gifts: set[asyncio.Task[None]] = set()

    def answer(reply: str) -> None:
        nonlocal refusals
        if reply.startswith(_ERROR_PREFIX):
            refusals += 1
        subscriber.reply(reply)  # acks travel in order with the frames

    async def gift(ack: Any, command: dict[str, Any], sender: User) -> None:
        reminded: list[Reminder] = []
        try:
            answer(await _reply(ack, _send_gift(command, economy, stream, sender, reminded)))
            for reminder in reminded:  # after the gift's answer, to this socket alone
                subscriber.reply(encode_personal_text(_shown(reminder)))
        finally:
            in_flight.release()

    try:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(message.get("code", 1000))
            raw = message.get("text") or message.get("bytes") or ""
            if len(raw) > MAX_MESSAGE_BYTES:
                subscriber.sink.close(CLOSE_TOO_BIG, f"messages are at most {MAX_MESSAGE_BYTES}")
                return
            parsed = _parse(raw, user, refusal)
            if not isinstance(parsed, str):
                assert user is not None  # _parse refused anonymous commands
                # The user as this node knows them now, not as the socket opened: blocked or
                # given another role on any node since, it counts here at once (api/auth.py).
                user = await _ticket_user(ws, user.id)
                if user is None:
                    subscriber.sink.close(CLOSE_BAD_TICKET, "the account is gone")
                    return
            if isinstance(parsed, str):
                answer(parsed)
            elif parsed[1] == "send_gift":
                assert user is not None
                await in_flight.acquire()
                task = asyncio.create_task(gift(parsed[0], parsed[2], user))
                gifts.add(task)
                task.add_done_callback(gifts.discard)
            else:
                acting = _act(
                    *parsed[1:],
                    hub,
                    stream,
                    user,
                    limiter,
                    services(ws),
                    economy.db,
                    economy.subscriptions.badges,
                )
                answer(await _reply(parsed[0], acting))
            if refusals > MAX_REFUSALS:
                subscriber.sink.close(CLOSE_POLICY, "too many refused commands")
                return
    finally:
        for task in gifts:
            task.cancel()  # the gift itself goes on being billed: only its answer is dropped


def _parse(
    raw: str | bytes, user: User | None, refusal: tuple[Code, str]
) -> str | tuple[Any, str, dict[str, Any]]:
    """(ack id, command name, command), or the error reply when it is not a command (or
    when the socket has no user: ``refusal``)."""
    try:
        command = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _error(None, Code.MALFORMED_FRAME, "a command is a JSON object")
    if not isinstance(command, dict) or not isinstance(command.get("cmd"), str):
        return _error(None, Code.MALFORMED_FRAME, 'a command is {"id": …, "cmd": "…", …}')
    ack = command.get("id")
    if not (ack is None or isinstance(ack, (int, str))) or len(str(ack)) > 64:
        return _error(None, Code.MALFORMED_FRAME, "id is a short string or number")
    name = command["cmd"]
    if name not in COMMANDS:
        return _error(ack, Code.UNKNOWN_COMMAND, "commands are " + ", ".join(COMMANDS))
    if user is None:
        return _error(ack, *refusal)
    return ack, name, command


async def _reply(ack: Any, work: Awaitable[dict[str, Any]]) -> str:
    try:
        return _ack(ack, await work)
    except DomainError as exc:
        return _error(ack, exc.code, exc.detail, exc.extra)


async def _act(
    name: str,
    command: dict[str, Any],
    hub: Hub,
    stream: Stream,
    user: User | None,
    limiter: RateLimiter,
    parts: Services,
    db: Engine,
    badges: SubscriberBadges,
) -> dict[str, Any]:
    assert user is not None  # _parse refused anonymous commands
    if name in ("like", "chat"):
        # banned: on every node (ban_gate.py)
        await parts.ban_gate.check(user.id, stream.creator_id)
    if name == "like":
        liked = await _like(command, hub, stream, user, limiter, parts.trending)
        parts.clubs.activity.like(stream.id, user.id, liked["liked"])  # club points, later
        return liked
    if name == "chat":
        # members- or subscribers-only chat, and the badges the line carries
        # (social/club_gate.py; the months: economy/subscriptions.py, cached per node)
        months = await badges.months(stream.creator_id, user.id)
        club = await parts.clubs.gate.chat_badge(stream.creator_id, user.id, months)
        return await _chat(command, hub, stream, user, limiter, months, club)
    return await _moderate(name, command, hub, stream, user, limiter, db)


async def _send_gift(
    command: dict[str, Any],
    economy: Economy,
    stream: Stream,
    user: User | None,
    reminded: list[Reminder],
) -> dict[str, Any]:
    assert user is not None  # _parse refused anonymous commands
    gift_id, count, key, message = (
        command.get("gift_id"),
        command.get("count", 1),
        command.get("idempotency_key"),
        command.get("message"),  # a paid highlighted message (economy/paid_messages.py)
    )
    if not isinstance(gift_id, str) or not isinstance(key, str) or type(count) is not int:
        raise _invalid("send_gift needs gift_id, idempotency_key (strings) and count (integer)")
    if message is not None and not isinstance(message, str):
        raise Invalid(Code.INVALID_MESSAGE, "a gift's message is a string")
    sent = await economy.gifting.send(
        SendGift(
            sender=user,
            stream_id=stream.id,
            gift_id=gift_id,
            count=count,
            idempotency_key=key,
            message=message,
        )
    )
    # A gentle reminder, for this viewer alone (docs/protocol.md): a personal event on their
    # socket, and (as before it) in their gift's answer. Once per gift: none for a retry.
    reminder = await economy.reminders.after_gift(sent)
    if reminder is not None:
        reminded.append(reminder)
    return receipt(sent, reminder)


def _shown(reminder: Reminder) -> SpendingReminderShown:
    return SpendingReminderShown(
        reason=reminder.reason,
        minutes=reminder.minutes,
        month_coins=reminder.month_coins,
        average_month_coins=reminder.average_month_coins,
    )


async def _like(
    command: dict[str, Any],
    hub: Hub,
    stream: Stream,
    user: User,
    limiter: RateLimiter,
    trending: Trending,
) -> dict[str, Any]:
    count = command.get("count", 1)
    if type(count) is not int or not 1 <= count <= 50:
        raise _invalid("like count is 1..50 taps")
    if await limiter.hit(f"like:{user.id}:{stream.id}", LIKE_RATE):
        raise _limited("too many likes; slow down")
    assert hub.broker is not None
    like = Liked(count=count, user_id=user.id, handle=user.handle)
    await hub.broker.publish(stream.id, like)
    await trending.like(stream.id, user.id)  # this node's likes (docs/trending.md)
    return {"liked": count}


async def _chat(
    command: dict[str, Any],
    hub: Hub,
    stream: Stream,
    user: User,
    limiter: RateLimiter,
    sub_months: int,
    club: ClubBadge | None,
) -> dict[str, Any]:
    text = chat_text(command.get("text"))
    await _may_chat(hub, limiter, user.id, stream.id)
    message = ChatPosted(
        message_id=secrets.token_hex(8),
        user_id=user.id,
        handle=user.handle,
        text=text,
        level=hub.level_of(user.id),  # this node's cache, never a query (level_badges.py)
        sub_months=sub_months,
        club=club,
    )
    assert hub.broker is not None
    await hub.broker.publish(stream.id, message)
    return {"sent": True, "message_id": message.message_id}


async def _may_chat(hub: Hub, limiter: RateLimiter, user_id: int, stream_id: str) -> None:
    """Not muted in the room, and within the chat rate (``live.chat_rules``)."""
    room = hub.peek(stream_id)  # a node that holds no copy of the room heard of no mute in it
    if room is not None and room.muted(user_id, time.time_ns() // 1000):
        raise Forbidden(Code.MUTED, "a moderator muted you in this room for a while")
    if await limiter.hit(chat_rate_key(user_id, stream_id), CHAT_RATE):
        raise _limited("too many messages; slow down")


def paid_message_gate(
    hub: Hub, limiter: RateLimiter, clubs: ClubGate, badges: SubscriberBadges
) -> MessageGate:
    """The chat rules a gift's message meets before the gift is billed: the same as a line of
    chat (the creator's chat mode, muted, rate; the text is checked by the economy with
    ``live.chat_rules``)."""

    async def gate(sender_id: int, stream_id: str, creator_id: int) -> None:
        months = await badges.months(creator_id, sender_id)
        await clubs.chat_badge(creator_id, sender_id, months)
        await _may_chat(hub, limiter, sender_id, stream_id)

    return gate


async def _moderate(
    name: str,
    command: dict[str, Any],
    hub: Hub,
    stream: Stream,
    user: User,
    limiter: RateLimiter,
    db: Engine,
) -> dict[str, Any]:
    """The stream's creator, the moderators they appointed and admins delete messages and mute
    users, in every node's room. Who may is the moderation service's rule, read each time (a
    few commands a second at most, below): a dismissed moderator stops at once, on every node."""
    await run_in_threadpool(moderation_service.require_moderator_of, db, stream.creator_id, user)
    # Each command is an event in every viewer's frames, on every node: a few a second is
    # what a person cleaning up a room sends; a script's thousands are refused (and its
    # socket closed after MAX_REFUSALS of them).
    if await limiter.hit(moderation_rate_key(user.id), MODERATION_RATE):
        raise _limited("too many moderation commands; slow down")
    assert hub.broker is not None
    if name == "hide_paid_message":
        send_id = command.get("send_id")
        if not isinstance(send_id, str) or not 1 <= len(send_id) <= SEND_ID_MAX_CHARS:
            raise _invalid("hide_paid_message needs the send_id of a paid message")
        news = await run_in_threadpool(paid_message_service.hide, db, stream.id, send_id, user)
        await hub.broker.publish(stream.id, news)
        return {"hidden": send_id}
    if name == "delete_message":
        message_id = command.get("message_id")
        if not isinstance(message_id, str) or not 1 <= len(message_id) <= 32:
            raise _invalid("delete_message needs the message_id of a chat message")
        await hub.broker.publish(stream.id, ChatDeleted(message_id=message_id))
        return {"deleted": message_id}
    target, minutes = command.get("user_id"), command.get("minutes", 10)
    if type(target) is not int or type(minutes) is not int or not 1 <= minutes <= 7 * 24 * 60:
        raise _invalid("mute needs user_id (integer) and minutes (1..10080)")
    if target == stream.creator_id:
        raise _invalid("the creator cannot be muted in their own room")
    until_us = time.time_ns() // 1000 + minutes * 60_000_000
    await hub.broker.publish(stream.id, Muted(user_id=target, until_us=until_us))
    return {"muted": target, "until_us": until_us}


def moderation_rate_key(user_id: int) -> str:
    """One moderation rate per person, whatever the command, socket, route or node."""
    return f"moderate:{user_id}"


def _invalid(detail: str) -> DomainError:
    return Invalid(Code.INVALID_COMMAND, detail)


def _limited(detail: str) -> DomainError:
    return RateLimited(Code.RATE_LIMITED, detail, retry_after_s=1.0)
