"""Login sessions (browser cookie or bearer token) and platform API keys.

Only SHA-256 hashes of the secrets are stored; a token is 256 random bits, so a fast hash is
enough (unlike a password, it cannot be guessed from a dictionary).
"""

from __future__ import annotations

import enum
import hashlib
import secrets
from dataclasses import dataclass
from typing import Final

from sqlalchemy import Connection, delete, insert, select, update

from giftwave.clock import now_us
from giftwave.db.tables import api_keys, sessions
from giftwave.errors import Code, Invalid

API_KEY_PREFIX: Final = "gwk_"


class Scope(enum.StrEnum):
    """What a platform integration's API key may do, on behalf of the users it maps."""

    USERS_WRITE = "users:write"  # create and map users (external_id)
    WALLET_READ = "wallet:read"
    GIFTS_SEND = "gifts:send"
    TOPUPS_CREATE = "topups:create"
    STREAMS_WRITE = "streams:write"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class NewSession:
    token: str
    csrf_token: str
    expires_at_us: int


@dataclass(frozen=True, slots=True)
class SessionInfo:
    user_id: int
    csrf_token: str
    expires_at_us: int


def create_session(conn: Connection, user_id: int, ttl_s: int) -> NewSession:
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(24)
    now = now_us()
    expires = now + ttl_s * 1_000_000
    conn.execute(
        insert(sessions).values(
            token_hash=token_hash(token),
            user_id=user_id,
            csrf_token=csrf,
            created_at_us=now,
            expires_at_us=expires,
        )
    )
    return NewSession(token, csrf, expires)


def find_sessions(conn: Connection, tokens: list[str]) -> dict[str, SessionInfo | None]:
    """Each token's session, in one query; None for a token unknown, malformed or expired."""
    hashes = {token_hash(t): t for t in tokens if 0 < len(t) <= 128}
    found: dict[str, SessionInfo | None] = dict.fromkeys(tokens)
    if not hashes:
        return found
    rows = conn.execute(
        select(
            sessions.c.token_hash,
            sessions.c.user_id,
            sessions.c.csrf_token,
            sessions.c.expires_at_us,
        ).where(sessions.c.token_hash.in_(list(hashes)))
    ).all()
    now = now_us()
    for row in rows:
        if row.expires_at_us > now:
            found[hashes[row.token_hash]] = SessionInfo(
                int(row.user_id), str(row.csrf_token), int(row.expires_at_us)
            )
    return found


def live_session_hashes(conn: Connection, hashes: list[str]) -> set[str]:
    """Which of these session hashes name a session that exists and has not expired (a
    thousand per query: a node may watch the sessions of tens of thousands of sockets)."""
    now, alive = now_us(), set[str]()
    for start in range(0, len(hashes), 1000):
        rows = conn.execute(
            select(sessions.c.token_hash).where(
                sessions.c.token_hash.in_(hashes[start : start + 1000]),
                sessions.c.expires_at_us > now,
            )
        ).all()
        alive.update(str(row.token_hash) for row in rows)
    return alive


def end_session(conn: Connection, token: str) -> None:
    conn.execute(delete(sessions).where(sessions.c.token_hash == token_hash(token)))


def end_all_sessions(conn: Connection, user_id: int) -> None:
    conn.execute(delete(sessions).where(sessions.c.user_id == user_id))


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: int
    integration: str
    prefix: str
    scopes: frozenset[Scope]


def parse_scopes(values: list[str]) -> frozenset[Scope]:
    try:
        return frozenset(Scope(v) for v in values)
    except ValueError:
        known = ", ".join(s.value for s in Scope)
        raise Invalid(Code.INVALID_SCOPE, f"scopes are some of: {known}") from None


def create_api_key(
    conn: Connection, integration: str, scopes: frozenset[Scope]
) -> tuple[ApiKey, str]:
    """A new key; the secret is returned once and never stored."""
    if not 1 <= len(integration) <= 64 or not integration.replace("-", "").isalnum():
        raise Invalid(Code.INVALID_INTEGRATION, "an integration name is 1-64 of a-z, 0-9 and '-'")
    prefix = secrets.token_hex(6)
    secret = f"{API_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    key_id = conn.execute(
        insert(api_keys)
        .values(
            integration=integration,
            prefix=prefix,
            key_hash=token_hash(secret),
            scopes=" ".join(sorted(scopes)),
            created_at_us=now_us(),
        )
        .returning(api_keys.c.id)
    ).scalar_one()
    return ApiKey(int(key_id), integration, prefix, scopes), secret


def find_api_key(conn: Connection, secret: str) -> ApiKey | None:
    if not secret.startswith(API_KEY_PREFIX) or len(secret) > 128:
        return None
    row = conn.execute(
        select(api_keys).where(
            api_keys.c.key_hash == token_hash(secret), api_keys.c.revoked_at_us.is_(None)
        )
    ).first()
    if row is None:
        return None
    scopes = frozenset(Scope(s) for s in str(row.scopes).split())
    return ApiKey(int(row.id), str(row.integration), str(row.prefix), scopes)


def revoke_api_key(conn: Connection, key_id: int) -> bool:
    result = conn.execute(
        update(api_keys)
        .where(api_keys.c.id == key_id, api_keys.c.revoked_at_us.is_(None))
        .values(revoked_at_us=now_us())
    )
    return result.rowcount == 1
