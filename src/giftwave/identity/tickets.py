"""Tickets that open a room's WebSocket as a user.

A browser cannot put an ``Authorization`` header on a WebSocket, and a session token in the
socket's URL ends up in logs (the server's, a proxy's) where anyone who reads them could act as
the user, payouts included, for as long as the session lives. A ticket is asked for with the
usual credentials (``POST /v1/streams/{id}/ws-ticket``) and opens one socket on that stream,
once, within ``GIFTWAVE_WS_TICKET_TTL_S`` (30 s); after that it is worth nothing.

Only a SHA-256 hash is stored (a ticket is 256 random bits, like a session token). The socket
that uses a ticket deletes its row in the statement that reads it, so two sockets can never
both use one, on whichever nodes they land: every node shares the database.

A ticket names the session it was asked with (by the session's hash): it opens nothing once
that session has ended, and the socket it opened is closed when the session ends (a logout, on
any node: api/live.py watches the ``session_ended`` notice).
"""

from __future__ import annotations

import secrets
from typing import Final, NamedTuple

from sqlalchemy import Connection, and_, delete, func, insert, select

from giftwave.clock import now_us
from giftwave.db.tables import socket_tickets
from giftwave.errors import Code, RateLimited
from giftwave.identity.sessions import live_session_hashes, token_hash

# Unused tickets one user may hold at once; each new ticket first removes that user's expired
# ones, so the table holds at most this many rows per user however often they ask.
MAX_OPEN_PER_USER: Final = 20
MAX_TICKET_CHARS: Final = 64


class TicketUse(NamedTuple):
    user_id: int
    session_hash: str  # the session the socket lives as long as


def issue_ticket(
    conn: Connection, user_id: int, stream_id: str, ttl_s: int, session_hash: str
) -> str:
    """A new ticket for ``user_id`` on ``stream_id``, asked with the session of
    ``session_hash`` (returned once, never stored)."""
    now = now_us()
    mine = socket_tickets.c.user_id == user_id
    conn.execute(delete(socket_tickets).where(and_(mine, socket_tickets.c.expires_at_us <= now)))
    held = conn.execute(select(func.count()).select_from(socket_tickets).where(mine)).scalar_one()
    if held >= MAX_OPEN_PER_USER:
        raise RateLimited(
            Code.TOO_MANY_TICKETS,
            f"at most {MAX_OPEN_PER_USER} unused socket tickets at once; use or let them lapse",
            retry_after_s=float(ttl_s),
        )
    ticket = secrets.token_urlsafe(32)
    conn.execute(
        insert(socket_tickets).values(
            ticket_hash=token_hash(ticket),
            user_id=user_id,
            stream_id=stream_id,
            expires_at_us=now + ttl_s * 1_000_000,
            session_hash=session_hash,
        )
    )
    return ticket


def use_ticket(conn: Connection, ticket: str, stream_id: str) -> TicketUse | None:
    """The user ``ticket`` opens ``stream_id`` for and the session it was asked with, or None
    (unknown, used, expired, for another stream, or its session has ended since). A ticket
    shown is spent, whatever the answer."""
    if not 0 < len(ticket) <= MAX_TICKET_CHARS:
        return None
    row = conn.execute(
        delete(socket_tickets)
        .where(socket_tickets.c.ticket_hash == token_hash(ticket))
        .returning(
            socket_tickets.c.user_id,
            socket_tickets.c.stream_id,
            socket_tickets.c.expires_at_us,
            socket_tickets.c.session_hash,
        )
    ).first()
    if row is None or row.expires_at_us <= now_us() or row.stream_id != stream_id:
        return None
    if row.session_hash is None or not live_session_hashes(conn, [row.session_hash]):
        return None
    return TicketUse(int(row.user_id), str(row.session_hash))
