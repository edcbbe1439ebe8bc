"""Who is calling: a browser session (cookie + CSRF header), a bearer token from login, a
platform API key acting for one of its users, or the operator's admin token.

Unsafe requests authenticated by cookie must echo the session's CSRF token in
``X-CSRF-Token``: a cross-site form can send the cookie, never the header.

Sessions, users and API keys are cached per node for a few seconds (``AuthCache``). Whatever
ends or changes one (a logout, a block or unblock, a role, a revoked key) announces it through
the broker's notices once it committed (``session_ended``, ``user_changed``,
``api_key_revoked``); every node, this one included, drops its copy at once, so the change
holds everywhere within a notice's trip (milliseconds), not a cache's lifetime. When notices
may have been lost (Redis restarted or was away), every node drops everything it cached.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Annotated, Any, Final, TypeVar

from fastapi import Depends, Request
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from giftwave.api.problems import Problem
from giftwave.api.state import services
from giftwave.db.batch_read import BatchReader
from giftwave.db.engine import reads
from giftwave.economy.services import Economy
from giftwave.errors import Code
from giftwave.identity.sessions import (
    API_KEY_PREFIX,
    ApiKey,
    Scope,
    find_api_key,
    find_sessions,
    live_session_hashes,
    token_hash,
)
from giftwave.identity.users import Role, User, find_by_external_ref, find_users
from giftwave.realtime.notices import AnyNotice, ApiKeyRevoked, SessionEnded, UserChanged
from giftwave.ttl_cache import TtlCache

log = logging.getLogger(__name__)
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

SESSION_COOKIE: Final = "gw_session"
CSRF_COOKIE: Final = "gw_csrf"
CSRF_HEADER: Final = "x-csrf-token"
ON_BEHALF_HEADER: Final = "giftwave-user"
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})


AUTH_NOTICES: Final = (SessionEnded, UserChanged, ApiKeyRevoked)  # what this cache reads


def session_ended_notice(token: str) -> SessionEnded:
    """A session was ended: its hash, as stored (a token itself never leaves the process)."""
    return SessionEnded(token_hash=token_hash(token))


@dataclass(frozen=True, slots=True)
class Principal:
    user: User | None  # None: the operator's admin token
    api_key: ApiKey | None = None

    @property
    def is_admin(self) -> bool:
        if self.api_key is not None:
            return False  # integrations never administer, whatever user they act for
        return self.user is None or self.user.role is Role.ADMIN


class AuthCache:
    """Token → user for a few seconds: the gift path must not hit the database per request.

    What is not cached is read with what other requests miss at the same moment, one query per
    batch (``BatchReader``): the entries of a room full of senders go stale together, and one
    query each had made hundreds of worker-thread hops at once, a gift p99 of 200-400 ms
    (docs/benchmarks.md).

    Sessions are kept by the token's hash, the name a ``session_ended`` notice gives them.
    ``notice`` drops what a notice names; ``forget_elsewhere`` are told of a changed user (or
    of every user: None) too (the gifting's cached creators)."""

    def __init__(
        self, db: Engine, forget_elsewhere: tuple[Callable[[int | None], None], ...] = ()
    ) -> None:
        self.db = db
        self._reads = reads(db)  # autocommit reads on PostgreSQL (db/engine.py)
        self.sessions: TtlCache[str, tuple[int, str]] = TtlCache(
            max_entries=200_000, ttl_s=10.0, refresh_s=8.0
        )
        self.users: TtlCache[int, User] = TtlCache(max_entries=200_000, ttl_s=5.0, refresh_s=4.0)
        self.keys: TtlCache[str, ApiKey] = TtlCache(max_entries=1_000, ttl_s=10.0)
        self.session_reads: BatchReader[str, tuple[int, str] | None] = BatchReader(
            self._read_sessions
        )
        self.user_reads: BatchReader[int, User | None] = BatchReader(self._read_users)
        self._forget_elsewhere = forget_elsewhere
        # Bumped by every notice: a read (on a worker thread) that began before a change must
        # not store its answer, now old, after the notice dropped the entry. The lock makes
        # "still the same generation? then store" one step against a notice on the loop.
        self._generation = 0
        self._lock = threading.Lock()
        # What lives only as long as a session (a room socket: api/live.py), by the session's
        # hash: each is called once when a notice says the session ended.
        self._session_ends: dict[str, set[Callable[[], None]]] = {}
        self._rechecks: set[asyncio.Task[None]] = set()

    def on_session_end(self, session_hash: str, end: Callable[[], None]) -> Callable[[], None]:
        """Call ``end`` (once, on the event loop) when the session of ``session_hash`` ends, on
        any node; returns what cancels that."""
        ends = self._session_ends.setdefault(session_hash, set())
        ends.add(end)

        def cancel() -> None:
            ends.discard(end)
            if not ends and self._session_ends.get(session_hash) is ends:
                del self._session_ends[session_hash]

        return cancel

    def _session_ended(self, session_hash: str) -> None:
        for end in self._session_ends.pop(session_hash, ()):
            end()

    async def _recheck_sessions(self) -> None:
        """Notices may have been lost: end what depends on a session that is gone now."""
        watched = list(self._session_ends)

        def read() -> set[str]:
            with self.db.connect() as conn:
                return live_session_hashes(conn, watched)

        try:
            alive = await asyncio.to_thread(read)
        except Exception:  # the database is away: the next lost-notice signal checks again
            log.exception("could not check the sessions of open sockets")
            return
        for session_hash in watched:
            if session_hash not in alive:
                self._session_ended(session_hash)

    def forget_user(self, user_id: int) -> None:
        self.users.drop(user_id)

    @property
    def generation(self) -> int:
        """Changes with every notice: a read begun before a change stores nothing after it."""
        return self._generation

    def notice(self, notice: AnyNotice | None) -> None:
        """A broker notice (api/app.py registers it); None: some may have been lost."""
        if notice is not None and not isinstance(
            notice, SessionEnded | UserChanged | ApiKeyRevoked
        ):
            return  # another part's notice (a ban)
        with self._lock:
            self._generation += 1
            match notice:
                case None:
                    self._drop_everything()
                    if self._session_ends:
                        task = asyncio.get_running_loop().create_task(self._recheck_sessions())
                        self._rechecks.add(task)
                        task.add_done_callback(self._rechecks.discard)
                case SessionEnded(token_hash=ended):
                    self.sessions.drop(ended)
                    self._session_ended(ended)
                case UserChanged(user_id=user_id):
                    self.users.drop(user_id)
                    for forget in self._forget_elsewhere:
                        forget(user_id)
                case ApiKeyRevoked():
                    self.keys.clear()

    def _drop_everything(self) -> None:
        self.sessions.clear()
        self.users.clear()
        self.keys.clear()
        for forget in self._forget_elsewhere:
            forget(None)

    def session(self, token: str) -> tuple[tuple[int, str] | None, bool]:
        """(user id, CSRF token) of a cached session, and whether to read it again now."""
        return self.sessions.get_refreshing(token_hash(token))

    def drop_session(self, token: str) -> None:
        self.sessions.drop(token_hash(token))

    def _read_sessions(self, tokens: list[str]) -> dict[str, tuple[int, str] | None]:
        generation = self._generation
        with self._reads.connect() as conn:
            found = find_sessions(conn, tokens)
        known = {t: None if i is None else (i.user_id, i.csrf_token) for t, i in found.items()}
        with self._lock:
            for token, session in known.items():
                if session is None:
                    self.drop_session(token)  # signed out or expired: a refresh stops serving
                elif generation == self._generation:
                    self.sessions.put(token_hash(token), session)
        return known

    def _read_users(self, user_ids: list[int]) -> dict[int, User | None]:
        generation = self._generation
        with self._reads.connect() as conn:
            found = find_users(conn, user_ids)
        with self._lock:
            for user_id, user in found.items():
                if user is None:
                    self.users.drop(user_id)
                elif generation == self._generation:
                    self.users.put(user.id, user)
        return found


def _economy(request: HTTPConnection) -> Economy:
    economy: Economy = services(request).economy
    return economy


def _auth_cache(request: HTTPConnection) -> AuthCache:
    cache: AuthCache = services(request).auth_cache
    return cache


# Dependencies are async on purpose: FastAPI runs a plain ``def`` dependency on a worker
# thread, two thread hops per request for what is an attribute read.
async def economy_of(request: Request) -> Economy:
    return _economy(request)


async def auth_cache_of(request: Request) -> AuthCache:
    return _auth_cache(request)


async def _read_through(cache: TtlCache[K, V], reads: BatchReader[K, V | None], key: K) -> V | None:
    """The cached value, refreshed in the background once it ages; else read with the batch."""
    value, refresh = cache.get_refreshing(key)
    if refresh:
        reads.prefetch(key)
    return value or await reads.get(key)


async def _user(request: HTTPConnection, user_id: int) -> User:
    cache = _auth_cache(request)
    user = await _read_through(cache.users, cache.user_reads, user_id)
    if user is None:
        raise Problem(401, Code.UNAUTHORIZED, "the session's user no longer exists")
    return user


async def _session(request: HTTPConnection, token: str) -> tuple[int, str] | None:
    cache = _auth_cache(request)
    session, refresh = cache.session(token)
    if refresh:
        cache.session_reads.prefetch(token)
    return session or await cache.session_reads.get(token)


async def session_user(connection: HTTPConnection, token: str) -> User | None:
    """The user of a session token, or None for an unknown or expired one (cached, like every
    request's): for a WebSocket, which cannot send the Authorization header."""
    if not 0 < len(token) <= 128:
        return None
    session = await _session(connection, token)
    return None if session is None else await _user(connection, session[0])


async def _api_key_principal(request: Request, secret: str) -> Principal:
    cache = _auth_cache(request)
    economy = _economy(request)
    key = cache.keys.get(secret)
    if key is None:

        def load() -> ApiKey | None:
            with economy.db.connect() as conn:
                return find_api_key(conn, secret)

        generation = cache.generation
        key = await run_in_threadpool(load)
        if key is None:
            raise Problem(401, Code.UNAUTHORIZED, "unknown or revoked API key")
        if generation == cache.generation:  # no key revoked while it was read
            cache.keys.put(secret, key)
    external_id = request.headers.get(ON_BEHALF_HEADER)
    if external_id is None:
        return Principal(None, key)  # the integration itself, acting for no user
    ref = f"{key.integration}:{external_id}"

    def load_user() -> User | None:
        with economy.db.connect() as conn:
            return find_by_external_ref(conn, ref)

    user = await run_in_threadpool(load_user)
    if user is None:
        raise Problem(404, Code.USER_NOT_FOUND, f"no user with external id {external_id!r}")
    return Principal(user, key)


def session_token(connection: HTTPConnection) -> str | None:
    """The session token a request came with: its bearer token, else its session cookie
    (for a ``SessionUser`` route, the session it was authenticated by)."""
    scheme, _, token = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token:
        return token
    return connection.cookies.get(SESSION_COOKIE)


async def principal(request: Request) -> Principal | None:
    """The caller, or None when anonymous. Bad credentials are a 401, never anonymous."""
    authorization = request.headers.get("authorization")
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Problem(401, Code.UNAUTHORIZED, "use 'Authorization: Bearer <token>'")
        admin = _economy(request).settings.admin_token
        if admin is not None and secrets.compare_digest(
            token.encode(), admin.get_secret_value().encode()
        ):
            return Principal(None)
        if token.startswith(API_KEY_PREFIX):
            return await _api_key_principal(request, token)
        session = await _session(request, token)
        if session is None:
            raise Problem(401, Code.UNAUTHORIZED, "the token is unknown or has expired")
        return Principal(await _user(request, session[0]))
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        session = await _session(request, cookie)
        if session is None:
            return None  # an expired cookie is just a logged-out browser
        if request.method not in SAFE_METHODS and not secrets.compare_digest(
            request.headers.get(CSRF_HEADER, "").encode(), session[1].encode()
        ):
            raise Problem(
                403, Code.CSRF_FAILED, f"send the {CSRF_COOKIE} cookie's value in X-CSRF-Token"
            )
        return Principal(await _user(request, session[0]))
    return None


MaybePrincipal = Annotated[Principal | None, Depends(principal)]


def acting_user(who: Principal | None, scope: Scope | None = None) -> User:
    """The user a request acts for; an API key must hold ``scope`` to act for its user."""
    if who is None:
        raise Problem(401, Code.UNAUTHORIZED, "log in or send a bearer token")
    if who.user is None and who.api_key is not None:
        raise Problem(
            400,
            Code.ON_BEHALF_REQUIRED,
            f"an API key acts for one of its users: send the {ON_BEHALF_HEADER} header",
        )
    if who.user is None:
        raise Problem(403, Code.USER_REQUIRED, "this route acts for a user, not the operator")
    if who.api_key is not None and (scope is None or scope not in who.api_key.scopes):
        needed = scope.value if scope else "a user session"
        raise Problem(403, Code.MISSING_SCOPE, f"this API key lacks the scope {needed}")
    return who.user


def require_user(scope: Scope | None = None) -> Any:
    """A dependency: a logged-in user (``acting_user``)."""

    async def dependency(who: MaybePrincipal) -> User:
        return acting_user(who, scope)

    return Depends(dependency)


async def _require_admin(who: MaybePrincipal) -> Principal:
    if who is None:
        raise Problem(401, Code.UNAUTHORIZED, "log in or send a bearer token")
    if who.api_key is not None or not who.is_admin:
        raise Problem(403, Code.ADMIN_REQUIRED, "this route is for administrators")
    return who


AdminPrincipal = Annotated[Principal, Depends(_require_admin)]


def require_api_key(scope: Scope) -> Any:
    """A dependency: a platform integration's key holding ``scope``, acting for itself."""

    async def dependency(who: MaybePrincipal) -> ApiKey:
        if who is None or who.api_key is None:
            raise Problem(401, Code.UNAUTHORIZED, "this route takes a platform API key")
        if scope not in who.api_key.scopes:
            raise Problem(403, Code.MISSING_SCOPE, f"this API key lacks the scope {scope.value}")
        return who.api_key

    return Depends(dependency)


# What each route needs, by the scope an API key must hold to do it for its user.
WalletUser = Annotated[User, require_user(Scope.WALLET_READ)]
GiftingUser = Annotated[User, require_user(Scope.GIFTS_SEND)]
BuyingUser = Annotated[User, require_user(Scope.TOPUPS_CREATE)]
StreamingUser = Annotated[User, require_user(Scope.STREAMS_WRITE)]
SessionUser = Annotated[User, require_user(None)]  # a person's own session; no API key
UsersWriteKey = Annotated[ApiKey, require_api_key(Scope.USERS_WRITE)]
