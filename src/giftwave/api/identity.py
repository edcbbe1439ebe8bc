"""Register, log in and out, who am I, my wallet; platform integrations map their users."""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import partial
from typing import Annotated, Final, Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from giftwave.api.auth import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    SessionUser,
    UsersWriteKey,
    WalletUser,
    economy_of,
    principal,
    session_ended_notice,
)
from giftwave.api.fields import IsoDate
from giftwave.api.shares import share_cookie
from giftwave.api.state import services
from giftwave.economy.services import Economy
from giftwave.errors import Code, Conflict, RateLimited
from giftwave.identity import account_service
from giftwave.identity.logins import Logins, Policies, taken
from giftwave.identity.users import (
    PASSWORD_MAX_CHARS,
    PASSWORD_MIN_CHARS,
    Role,
    User,
)
from giftwave.ratelimit import Rate, RateLimiter
from giftwave.realtime.notices import UserChanged

router = APIRouter(prefix="/v1", tags=["identity"])

Econ = Annotated[Economy, Depends(economy_of)]

# A person becomes a creator once; a few tries (a double click, a retry) are plenty, and each
# is a transaction: past these, a script is refused, on every node alike.
BECOME_CREATOR_RATE: Final = Rate(1 / 60, 5)


def today() -> date:
    return datetime.now(UTC).date()


class UserOut(BaseModel):
    id: int
    handle: str
    email: str | None
    role: Role
    country: str
    birth_date: date
    status: str
    age_verified: bool
    can_gift: bool  # old enough and not blocked

    @classmethod
    def of(cls, user: User, economy: Economy) -> UserOut:
        return cls(
            id=user.id,
            handle=user.handle,
            email=user.email,
            role=user.role,
            country=user.country,
            birth_date=user.birth_date,
            status=user.status.value,
            age_verified=user.age_verified,
            can_gift=not user.blocked and economy.age_rule.allows(user, today()),
        )


class Register(BaseModel):
    model_config = ConfigDict(extra="forbid")
    handle: str = Field(min_length=3, max_length=24)
    email: str = Field(max_length=254)
    password: str = Field(min_length=PASSWORD_MIN_CHARS, max_length=PASSWORD_MAX_CHARS)
    birth_date: IsoDate
    country: str = Field(min_length=2, max_length=2)
    role: Literal["viewer", "creator"] = "viewer"


class Login(BaseModel):
    model_config = ConfigDict(extra="forbid")
    login: str = Field(min_length=1, max_length=254, description="e-mail or handle")
    password: str = Field(min_length=1, max_length=PASSWORD_MAX_CHARS)


class SessionOut(BaseModel):
    user: UserOut
    token: str = Field(description="send as 'Authorization: Bearer <token>'")
    csrf_token: str
    expires_at: datetime


def _start_session(economy: Economy, response: Response, user: User) -> SessionOut:
    session = account_service.start_session(economy.db, user.id, economy.settings.session_ttl_s)
    secure = economy.settings.cookie_secure
    max_age = economy.settings.session_ttl_s
    response.set_cookie(
        SESSION_COOKIE,
        session.token,
        max_age=max_age,
        httponly=True,
        secure=secure,
        samesite="lax",
        path="/",
    )
    # Readable by the page's script, which echoes it in X-CSRF-Token.
    response.set_cookie(
        CSRF_COOKIE,
        session.csrf_token,
        max_age=max_age,
        httponly=False,
        secure=secure,
        samesite="lax",
        path="/",
    )
    return SessionOut(
        user=UserOut.of(user, economy),
        token=session.token,
        csrf_token=session.csrf_token,
        expires_at=datetime.fromtimestamp(session.expires_at_us / 1e6, tz=UTC),
    )


def client_address(request: Request) -> str:
    """Who is asking, as far as the network says (behind a trusted proxy: its
    X-Forwarded-For, which uvicorn applies; see docs/operations.md)."""
    return request.client.host if request.client else "unknown"


def _logins(economy: Economy) -> Logins:
    return Logins(economy.db, economy.passwords, Policies.of(economy.settings))


@router.post("/auth/register", status_code=201, response_model=SessionOut)
async def register(
    body: Register, request: Request, response: Response, economy: Econ
) -> SessionOut:
    """A new account and its session. A handle or e-mail already registered is one answer,
    409 already_registered, whichever it is; sign-ups are limited per client address. A
    creator under the country's gifting age: 403 creator_too_young (min_age), as for
    POST /v1/me/creator."""
    password_hash = await _logins(economy).sign_up_hash(body.password, client_address(request))

    def work() -> SessionOut:
        user = account_service.sign_up(
            economy.db,
            handle=body.handle.lower(),
            email=body.email.strip().lower(),
            password_hash=password_hash,
            role=Role(body.role),
            birth_date=body.birth_date,
            country=body.country.upper(),
            today=today(),
            age_rule=economy.age_rule,
        )
        return _start_session(economy, response, user)

    try:
        session = await run_in_threadpool(work)
    except Conflict as exc:
        raise taken(exc) from None
    # Came through a share link: credit its sharer (docs/sharing.md).
    await services(request).sharing.signed_up(session.user.id, share_cookie(request))
    return session


@router.post("/auth/login", response_model=SessionOut)
async def login(body: Login, request: Request, response: Response, economy: Econ) -> SessionOut:
    """401 invalid_credentials for an unknown login or a wrong password alike; 429
    too_many_attempts (Retry-After) while the login name or the address backs off."""
    user = await _logins(economy).log_in(body.login, body.password, client_address(request))
    return await run_in_threadpool(_start_session, economy, response, user)


@router.post("/auth/logout", status_code=204)
async def logout(request: Request, response: Response, economy: Econ) -> Response:
    authorization = request.headers.get("authorization", "")
    token = authorization.partition(" ")[2]
    # By cookie, logging out is a state change like any other: a cross-site form must not be
    # able to do it. principal() checks the CSRF header (an expired cookie: nothing to do).
    if not token and request.cookies.get(SESSION_COOKIE) and await principal(request) is not None:
        token = request.cookies[SESSION_COOKIE]
    if token:
        await run_in_threadpool(account_service.end_session, economy.db, token)
        # Committed: every node (this one at once) drops the session (api/auth.py).
        await services(request).broker.notify(session_ended_notice(token))
    response.status_code = 204
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response


@router.get("/me", response_model=UserOut)
async def me(economy: Econ, user: WalletUser) -> UserOut:
    return UserOut.of(user, economy)


@router.post("/me/creator", response_model=UserOut)
async def become_a_creator(request: Request, economy: Econ, user: SessionUser) -> UserOut:
    """The caller, a viewer, becomes a creator (go live, clips, payouts). Idempotent: a
    creator or an admin gets their account back unchanged (200 either way). A person's own
    session only (no API key); 403 account_blocked, 403 creator_too_young (min_age); 429
    rate_limited."""
    limiter: RateLimiter = services(request).rate_limiter
    wait_s = await limiter.hit(f"become_creator:{user.id}", BECOME_CREATOR_RATE)
    if wait_s:
        raise RateLimited(Code.RATE_LIMITED, "too many tries; wait a little", retry_after_s=wait_s)

    upgraded, changed = await run_in_threadpool(
        account_service.become_creator, economy.db, user.id, economy.age_rule, today()
    )
    if changed:  # every node's pages and routes see the role at once (api/auth.py)
        await services(request).broker.notify(UserChanged(user_id=user.id))
    return UserOut.of(upgraded, economy)


class WalletOut(BaseModel):
    coins: int
    coins_debt: int
    diamonds: int
    diamonds_reserved: int
    diamonds_debt: int


@router.get("/me/wallet", response_model=WalletOut)
async def my_wallet(economy: Econ, user: WalletUser) -> WalletOut:
    view = await economy.wallet(user.id)
    return WalletOut.model_validate(view, from_attributes=True)


class IntegrationUser(BaseModel):
    model_config = ConfigDict(extra="forbid")
    external_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:@\-]+$")
    handle: str = Field(min_length=3, max_length=24)
    birth_date: IsoDate
    country: str = Field(min_length=2, max_length=2)
    role: Literal["viewer", "creator"] = "viewer"


@router.post("/integrations/users", response_model=UserOut, tags=["integrations"])
async def map_user(
    body: IntegrationUser,
    response: Response,
    economy: Econ,
    key: UsersWriteKey,
) -> UserOut:
    """Create the giftwave user for one of the platform's users; the same external id again
    answers the same user (200), a new one is 201. A creator under the country's gifting age:
    403 creator_too_young (min_age)."""
    ref = f"{key.integration}:{body.external_id}"

    user, created = await run_in_threadpool(
        partial(
            account_service.map_external_user,
            economy.db,
            ref,
            handle=body.handle.lower(),
            role=Role(body.role),
            birth_date=body.birth_date,
            country=body.country.upper(),
            today=today(),
            age_rule=economy.age_rule,
        )
    )
    response.status_code = 201 if created else 200
    return UserOut.of(user, economy)
