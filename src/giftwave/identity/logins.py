"""Who may try a password, and when: log-in and sign-up behind the throttles and hash slots.

    log_in       the login name and the client address are charged one attempt (refused with
                 429 too_many_attempts while either is backing off), then the password is
                 verified in a hash slot; a success forgets the name's attempts and refunds the
                 address's; an unknown name is charged and hashed exactly like a known one
    sign_up      the client address is charged one sign-up, then the password hashed in a
                 slot; a handle or e-mail already registered is one refusal, whichever it is

A request that finds no hash slot in time (503 busy) is refunded: it was never tried.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final, TypeVar

from sqlalchemy import Engine

from giftwave.config import Settings
from giftwave.errors import Code, Conflict, RateLimited, Unauthorized, Unavailable
from giftwave.identity.passwords import Passwords
from giftwave.identity.throttle import Backoff, Charge, Throttles, address_key, login_key
from giftwave.identity.users import User, find_by_login

# One wrong attempt per login name is forgotten every 15 minutes, one per address every
# minute: a person who mistypes now and then never waits, a guesser soon waits minutes.
LOGIN_NAME_DECAY_S: Final = 900
LOGIN_ADDRESS_DECAY_S: Final = 60
TAKEN_CODES: Final = frozenset({"handle_taken", "email_taken", "already_registered"})

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Policies:
    login_name: Backoff
    login_address: Backoff
    sign_up_address: Backoff

    @classmethod
    def of(cls, settings: Settings) -> Policies:
        base_ms, max_s = settings.login_backoff_base_ms, settings.login_backoff_max_s
        return cls(
            login_name=Backoff(settings.login_attempts_free, base_ms, max_s, LOGIN_NAME_DECAY_S),
            login_address=Backoff(
                settings.login_address_attempts_free, base_ms, max_s, LOGIN_ADDRESS_DECAY_S
            ),
            sign_up_address=Backoff(
                settings.register_address_free,
                base_ms,
                max_s,
                max(1, 3600 // settings.register_address_per_hour),
            ),
        )


def _too_many(charge: Charge, what: str) -> RateLimited:
    return RateLimited(
        Code.TOO_MANY_ATTEMPTS,
        f"too many {what}; wait before trying again",
        retry_after_s=charge.wait_s,
    )


class Logins:
    def __init__(self, db: Engine, passwords: Passwords, policies: Policies) -> None:
        self._db = db
        self._passwords = passwords
        self._policies = policies
        self._throttles = Throttles(db)

    async def log_in(self, login: str, password: str, address: str) -> User:
        """The user whose login name and password these are, or ``Unauthorized`` — the same
        answer, after the same work, whether the name is unknown or the password wrong."""
        name, by_address = login_key(login), address_key("address", address)
        charge = await asyncio.to_thread(
            self._throttles.charge,
            {name: self._policies.login_name, by_address: self._policies.login_address},
        )
        if not charge.allowed:
            raise _too_many(charge, "log-in attempts")

        def find() -> tuple[User, str | None] | None:
            with self._db.connect() as conn:
                return find_by_login(conn, login)

        found = await asyncio.to_thread(find)
        password_hash = None if found is None else found[1]
        # Verified even for an unknown login, so both take the same time.
        keys = [name, by_address]
        verify = self._passwords.verify_bounded
        ok = await self._refunded_if_busy(charge, keys, lambda: verify(password_hash, password))
        if found is None or not ok:
            raise Unauthorized(Code.INVALID_CREDENTIALS, "that login and password do not match")
        await asyncio.to_thread(self._throttles.reset, name)
        # The address's attempt was its owner's: it should not count against the others there.
        await asyncio.to_thread(self._throttles.refund, charge, [by_address])
        return found[0]

    async def sign_up_hash(self, password: str, address: str) -> str:
        """The hash of a new account's password, once the address may sign up again."""
        key = address_key("register", address)
        charge = await asyncio.to_thread(
            self._throttles.charge, {key: self._policies.sign_up_address}
        )
        if not charge.allowed:
            raise _too_many(charge, "sign-ups from this address")
        return await self._refunded_if_busy(
            charge, [key], lambda: self._passwords.hash_bounded(password)
        )

    async def _refunded_if_busy(
        self, charge: Charge, keys: list[str], work: Callable[[], Awaitable[T]]
    ) -> T:
        try:
            return await work()
        except Unavailable:
            await asyncio.to_thread(self._throttles.refund, charge, keys)
            raise


def taken(exc: Conflict) -> Conflict:
    """A taken handle or e-mail, said the same way whichever it is."""
    if exc.code not in TAKEN_CODES:
        return exc
    return Conflict(
        Code.ALREADY_REGISTERED,
        "that handle or e-mail is already registered: choose another handle, or log in",
    )
