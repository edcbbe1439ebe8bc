"""Log-in and sign-up throttles with exponential backoff, kept in the database.

In the database, not in a process's memory: several server processes (``--workers``) and nodes
serve the same accounts, and a limit per process would multiply with them; unlike Redis, the
database is always there when a log-in is (it has the password hashes), so the throttle never
has to fail open. A log-in already reads the database; the throttle adds one short
transaction, nothing next to the Argon2 hash it guards.

Each key (a login name, a client address) holds a count of recent attempts that leaks away,
one every ``decay_s``. ``free_attempts`` may come at once; the last of them, and each one
after, blocks the key for ``base_ms``, then twice that, and so on up to ``max_s``. An attempt
made while the key is blocked is refused and not counted: a flood of refused attempts does not
lengthen the wait of the account's owner, and costs the server one small transaction each, no
hash.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Final

from sqlalchemy import Connection, Engine, and_, delete, select, update

from giftwave.clock import now_us
from giftwave.db.tables import auth_throttles
from giftwave.db.upsert import insert_for

MAX_KEYS_PER_CHARGE: Final = 4
PRUNE_AFTER_S: Final = 2 * 86_400  # a key quiet this long (and not blocked) is deleted
PRUNE_ONE_IN: Final = 256  # charges: pruning runs now and then, never on every attempt
_MAX_DOUBLINGS: Final = 40


@dataclass(frozen=True, slots=True)
class Backoff:
    free_attempts: int
    base_ms: int
    max_s: int
    decay_s: int  # one attempt is forgotten per this many seconds

    def __post_init__(self) -> None:
        assert self.free_attempts >= 0
        assert self.base_ms >= 1
        assert self.max_s >= 1
        assert self.decay_s >= 1


@dataclass(frozen=True, slots=True)
class KeyState:
    attempts: int
    blocked_until_us: int
    updated_at_us: int


NEW_KEY: Final = KeyState(0, 0, 0)


def decayed(state: KeyState, now_us: int, policy: Backoff) -> KeyState:
    """The state with the attempts forgotten since it was written."""
    decay_us = policy.decay_s * 1_000_000
    forgotten = max(0, now_us - state.updated_at_us) // decay_us
    if forgotten >= state.attempts:
        return KeyState(0, state.blocked_until_us, now_us)
    # The part of an interval already gone carries over, so slow attempts do decay.
    return KeyState(
        state.attempts - forgotten,
        state.blocked_until_us,
        state.updated_at_us + forgotten * decay_us,
    )


def charge(state: KeyState, now_us: int, policy: Backoff) -> tuple[KeyState, int]:
    """The key's state after one more attempt, and 0; or, when the key is blocked, the state
    unchanged and how many microseconds are left to wait."""
    if state.blocked_until_us > now_us:
        return state, state.blocked_until_us - now_us
    left = decayed(state, now_us, policy)
    attempts = left.attempts + 1
    blocked_until_us = 0
    if attempts >= policy.free_attempts:
        doublings = min(attempts - policy.free_attempts, _MAX_DOUBLINGS)
        wait_us = min(policy.base_ms * 1000 * 2**doublings, policy.max_s * 1_000_000)
        blocked_until_us = now_us + wait_us
    return KeyState(attempts, blocked_until_us, left.updated_at_us), 0


@dataclass(frozen=True, slots=True)
class Charge:
    """One attempt counted against some keys: ``wait_s`` > 0 means refused (nothing counted)."""

    wait_s: float
    before: dict[str, KeyState]
    after: dict[str, KeyState]

    @property
    def allowed(self) -> bool:
        return self.wait_s == 0


def login_key(login: str) -> str:
    """A login name's key: hashed, so the table holds no e-mail address anyone typed."""
    name = login.strip().lower()
    return "login:" + hashlib.sha256(name.encode()).hexdigest()


def address_key(kind: str, address: str) -> str:
    assert kind in ("address", "register")
    return f"{kind}:{address[:64]}"


class Throttles:
    """Charges, refunds and resets of throttle keys; each call is one short transaction (call
    from a worker thread)."""

    def __init__(self, db: Engine) -> None:
        self._db = db

    def charge(self, keys: dict[str, Backoff]) -> Charge:
        """Count one attempt against every key, or none when any of them is blocked."""
        assert 0 < len(keys) <= MAX_KEYS_PER_CHARGE
        now = now_us()
        with self._db.begin() as conn:
            before = self._locked(conn, sorted(keys), now)
            after: dict[str, KeyState] = {}
            wait_us = 0
            for key, policy in keys.items():
                state, wait = charge(before[key], now, policy)
                after[key] = state
                wait_us = max(wait_us, wait)
            if wait_us:
                return Charge(wait_us / 1e6, before, before)
            for key, state in after.items():
                conn.execute(
                    update(auth_throttles)
                    .where(auth_throttles.c.key == key)
                    .values(
                        attempts=state.attempts,
                        blocked_until_us=state.blocked_until_us,
                        updated_at_us=state.updated_at_us,
                    )
                )
            if secrets.randbelow(PRUNE_ONE_IN) == 0:
                _prune(conn, now)
        return Charge(0.0, before, after)

    def refund(self, done: Charge, keys: list[str]) -> None:
        """Take back an attempt that did not happen (no hash slot) or that should not count (a
        log-in that succeeded, against its address) — unless others were counted since."""
        with self._db.begin() as conn:
            for key in sorted(keys):
                after, before = done.after[key], done.before[key]
                conn.execute(
                    update(auth_throttles)
                    .where(
                        and_(
                            auth_throttles.c.key == key,
                            auth_throttles.c.attempts == after.attempts,
                            auth_throttles.c.blocked_until_us == after.blocked_until_us,
                        )
                    )
                    .values(
                        attempts=before.attempts,
                        blocked_until_us=before.blocked_until_us,
                        updated_at_us=before.updated_at_us,
                    )
                )

    def reset(self, key: str) -> None:
        """Forget a key (its owner just proved who they are)."""
        with self._db.begin() as conn:
            conn.execute(delete(auth_throttles).where(auth_throttles.c.key == key))

    @staticmethod
    def _locked(conn: Connection, keys: list[str], now: int) -> dict[str, KeyState]:
        """Each key's row, created when missing, locked until the transaction ends (rows in
        key order, so two charges never wait on each other in a circle)."""
        # A write first: on SQLite it takes the database's write lock (waiting for it), so
        # the read below cannot go stale before the update.
        conn.execute(
            insert_for(conn, auth_throttles).on_conflict_do_nothing(index_elements=["key"]),
            [{"key": k, "attempts": 0, "blocked_until_us": 0, "updated_at_us": now} for k in keys],
        )
        rows = conn.execute(
            select(auth_throttles)
            .where(auth_throttles.c.key.in_(keys))
            .order_by(auth_throttles.c.key)
            .with_for_update()
        ).all()
        return {
            str(r.key): KeyState(int(r.attempts), int(r.blocked_until_us), int(r.updated_at_us))
            for r in rows
        }


def _prune(conn: Connection, now: int) -> None:
    conn.execute(
        delete(auth_throttles).where(
            auth_throttles.c.updated_at_us < now - PRUNE_AFTER_S * 1_000_000,
            auth_throttles.c.blocked_until_us < now,
        )
    )
