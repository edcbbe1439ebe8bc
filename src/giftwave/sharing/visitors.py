"""Who opened a link, without keeping who they are: visitor hashes with a salt of the day, and
the signed cookie that remembers, in the visitor's own browser, which links brought them.

A visitor is ``SHA-256(salt, address, User-Agent)``. The salt is random, made by the first node
that needs it on a UTC day and kept in ``server_secrets`` so every node agrees; older days' salts
are deleted as a new day's is made. A salt computed from a lasting secret could be computed
again by anyone who reads the database, and the 2**32 IPv4 addresses are quickly tried: a
deleted random salt cannot, so yesterday's hashes say nothing about anyone (two visits on one
day by the same browser still count as one visitor).

The cookie names the first and the last link opened (code and time), signed with a lasting
secret of the same table, so a visitor cannot credit a link they never opened.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import date
from typing import Final

from sqlalchemy import Connection, delete, insert, select

from giftwave.db.tables import server_secrets
from giftwave.db.upsert import insert_new
from giftwave.sharing.links import CODE_RE

COOKIE_SECRET_NAME: Final = "share_cookie"
SALT_PREFIX: Final = "visitor_salt:"
SECRET_BYTES: Final = 32
SIGNATURE_CHARS: Final = 22  # 132 bits of HMAC-SHA256
MAX_COOKIE_CHARS: Final = 120


def _secret(conn: Connection, name: str) -> bytes | None:
    found = conn.execute(
        select(server_secrets.c.secret).where(server_secrets.c.name == name)
    ).scalar_one_or_none()
    return None if found is None else base64.urlsafe_b64decode(found)


def server_secret(conn: Connection, name: str, now_us: int) -> tuple[bytes, bool]:
    """The named secret, made on first use (two first uses at once agree on one); True if made."""
    found = _secret(conn, name)
    if found is not None:
        return found, False
    secret = base64.urlsafe_b64encode(secrets.token_bytes(SECRET_BYTES)).decode()
    # Refused when made at the same moment elsewhere: read theirs.
    made = insert_new(
        conn, insert(server_secrets).values(name=name, secret=secret, created_at_us=now_us)
    )
    found = _secret(conn, name)
    assert found is not None
    return found, made


def daily_salt(conn: Connection, day: date, now_us: int) -> bytes:
    """The visitor salt of ``day`` (UTC); making it deletes the salts of the days before."""
    name = SALT_PREFIX + day.isoformat()
    salt, made = server_secret(conn, name, now_us)
    if made:
        conn.execute(
            delete(server_secrets).where(
                server_secrets.c.name.like(SALT_PREFIX + "%"), server_secrets.c.name < name
            )
        )
    return salt


def visitor_hash(salt: bytes, address: str, user_agent: str) -> str:
    digest = hashlib.sha256()
    for part in (salt, address.encode(), user_agent.encode()):
        digest.update(len(part).to_bytes(4, "big"))  # length-prefixed: no two inputs collide
        digest.update(part)
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class ShareCookie:
    """The first and the last link this browser opened, with when (Unix seconds)."""

    first_code: str
    first_at_s: int
    last_code: str
    last_at_s: int

    def opened(self, code: str, at_s: int, window_s: int) -> ShareCookie:
        """After opening ``code``: the first link stays while it is inside the window."""
        if at_s - self.first_at_s > window_s:
            return ShareCookie(code, at_s, code, at_s)
        return ShareCookie(self.first_code, self.first_at_s, code, at_s)

    def encode(self, secret: bytes) -> str:
        payload = f"{self.first_code}.{self.first_at_s}.{self.last_code}.{self.last_at_s}"
        return f"{payload}.{_sign(secret, payload)}"

    @staticmethod
    def decode(secret: bytes, value: str) -> ShareCookie | None:
        """The cookie's links, or None when it is not one this server signed."""
        if len(value) > MAX_COOKIE_CHARS:
            return None
        payload, _, signature = value.rpartition(".")
        if not hmac.compare_digest(signature.encode(), _sign(secret, payload).encode()):
            return None
        parts = payload.split(".")
        if len(parts) != 4 or not all(CODE_RE.fullmatch(parts[i]) for i in (0, 2)):
            return None
        if not (parts[1].isdigit() and parts[3].isdigit()):
            return None
        return ShareCookie(parts[0], int(parts[1]), parts[2], int(parts[3]))


def _sign(secret: bytes, payload: str) -> str:
    mac = hmac.new(secret, b"share-cookie:" + payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode()[:SIGNATURE_CHARS]
