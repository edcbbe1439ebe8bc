"""Users: registration, lookup, roles, blocking, and the age rule."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Final

from babel import Locale
from sqlalchemy import ColumnElement, Connection, Row, case, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from giftwave.clock import now_us
from giftwave.db.tables import users
from giftwave.errors import Code, Conflict, Forbidden, Invalid, NotFound

HANDLE_RE: Final = re.compile(r"[a-z0-9_.]{3,24}")
EMAIL_RE: Final = re.compile(r"[^@\s]{1,64}@[^@\s]{1,185}\.[^@\s]{2,63}")
EXTERNAL_ID_RE: Final = re.compile(r"[A-Za-z0-9_.:@\-]{1,64}")
PASSWORD_MIN_CHARS: Final = 8
PASSWORD_MAX_CHARS: Final = 256
SEARCH_MAX_USERS: Final = 100


class Role(enum.StrEnum):
    VIEWER = "viewer"
    CREATOR = "creator"
    ADMIN = "admin"


class UserStatus(enum.StrEnum):
    ACTIVE = "active"
    BLOCKED = "blocked"


@dataclass(frozen=True, slots=True)
class User:
    id: int
    handle: str
    email: str | None
    role: Role
    birth_date: date
    country: str
    status: UserStatus
    age_verified: bool
    external_ref: str | None

    @property
    def blocked(self) -> bool:
        return self.status is UserStatus.BLOCKED


@dataclass(frozen=True, slots=True)
class AgeRule:
    """Who may buy coins and send or receive gifts: this age, or the country's own."""

    min_age: int
    by_country: dict[str, int]

    def min_age_for(self, country: str) -> int:
        return self.by_country.get(country, self.min_age)

    def allows(self, user: User, today: date) -> bool:
        return age_on(user.birth_date, today) >= self.min_age_for(user.country)

    def require(self, user: User, today: date, doing: str) -> None:
        """Refuse ``doing`` ("buying coins") to a user under their country's age: every
        spending route says it in the same words, with the age in the problem."""
        if not self.allows(user, today):
            age = self.min_age_for(user.country)
            raise Forbidden(Code.UNDER_AGE, f"{doing} needs age {age}+", min_age=age)


def age_on(birth_date: date, today: date) -> int:
    years = today.year - birth_date.year
    if (today.month, today.day) < (birth_date.month, birth_date.day):
        years -= 1
    return years


@cache
def _countries() -> frozenset[str]:
    # Babel's territory names, without the numeric regions ("001" is the world).
    codes = (str(code) for code in Locale("en").territories)
    return frozenset(code for code in codes if code.isalpha() and len(code) == 2)


def check_country(country: str) -> str:
    if country not in _countries():
        raise Invalid(Code.INVALID_COUNTRY, f"{country!r} is not an ISO 3166 country code like US")
    return country


def check_birth_date(birth_date: date, today: date) -> date:
    if birth_date > today or birth_date.year < 1900:
        raise Invalid(Code.INVALID_BIRTH_DATE, "the date of birth must be a real past date")
    return birth_date


def require_creator_age(age_rule: AgeRule, birth_date: date, country: str, today: date) -> None:
    """Creators receive gifts, so they must be of the age the economy asks for (``AgeRule``):
    the one rule for signing up as a creator and for a viewer becoming one later, so neither
    way round the other lets a minor in."""
    min_age = age_rule.min_age_for(country)
    if age_on(birth_date, today) < min_age:
        raise Forbidden(
            Code.CREATOR_TOO_YOUNG, f"creators must be aged {min_age} or over", min_age=min_age
        )


def _to_user(row: Row[tuple[object, ...]]) -> User:
    m = row._mapping
    return User(
        id=int(m["id"]),
        handle=str(m["handle"]),
        email=m["email"],
        role=Role(m["role"]),
        birth_date=m["birth_date"],
        country=str(m["country"]),
        status=UserStatus(m["status"]),
        age_verified=bool(m["age_verified"]),
        external_ref=m["external_ref"],
    )


def create_user(
    conn: Connection,
    *,
    handle: str,
    role: Role,
    birth_date: date,
    country: str,
    today: date,
    age_rule: AgeRule,
    email: str | None = None,
    password_hash: str | None = None,
    external_ref: str | None = None,
) -> User:
    """Insert a user; a taken handle, e-mail or external id is a ``Conflict`` naming which.
    A creator must be of age (``require_creator_age``): ``age_rule`` is required so that no
    way of making accounts can forget it."""
    if not HANDLE_RE.fullmatch(handle):
        raise Invalid(Code.INVALID_HANDLE, "a handle is 3-24 of a-z, 0-9, '_' and '.'")
    if email is not None and (not EMAIL_RE.fullmatch(email) or not email.isprintable()):
        raise Invalid(Code.INVALID_EMAIL, "that is not an e-mail address")
    check_country(country)
    check_birth_date(birth_date, today)
    if role is Role.CREATOR:
        require_creator_age(age_rule, birth_date, country, today)
    for column, value, code in (
        (users.c.handle, handle, Code.HANDLE_TAKEN),
        (users.c.email, email, Code.EMAIL_TAKEN),
        (users.c.external_ref, external_ref, Code.EXTERNAL_ID_TAKEN),
    ):
        if value is not None and conn.execute(select(users.c.id).where(column == value)).first():
            raise Conflict(code, f"{column.name} {value!r} is already registered")
    try:
        with conn.begin_nested():
            user_id = conn.execute(
                insert(users)
                .values(
                    handle=handle,
                    email=email,
                    password_hash=password_hash,
                    role=role.value,
                    birth_date=birth_date,
                    country=country,
                    status=UserStatus.ACTIVE.value,
                    age_verified=False,
                    external_ref=external_ref,
                    created_at_us=now_us(),
                )
                .returning(users.c.id)
            ).scalar_one()
    except IntegrityError:
        # Registered concurrently between the check and the insert.
        raise Conflict(Code.ALREADY_REGISTERED, "that handle or e-mail was just taken") from None
    return get_user(conn, user_id)


def find_user(conn: Connection, user_id: int) -> User | None:
    return find_users(conn, [user_id])[user_id]


def find_users(conn: Connection, user_ids: list[int]) -> dict[int, User | None]:
    """Each user by id, in one query; None for an id no user has."""
    found: dict[int, User | None] = dict.fromkeys(user_ids)
    wanted = [i for i in user_ids if 0 < i < 2**63]
    if wanted:
        for row in conn.execute(select(users).where(users.c.id.in_(wanted))).all():
            found[int(row.id)] = _to_user(row)
    return found


def get_user(conn: Connection, user_id: int) -> User:
    user = find_user(conn, user_id)
    if user is None:
        raise NotFound(Code.USER_NOT_FOUND, f"no user {user_id}")
    return user


def find_by_login(conn: Connection, login: str) -> tuple[User, str | None] | None:
    """A user and their password hash by e-mail or handle."""
    column = users.c.email if "@" in login else users.c.handle
    row = conn.execute(select(users).where(column == login.strip().lower())).first()
    return None if row is None else (_to_user(row), row._mapping["password_hash"])


def find_by_external_ref(conn: Connection, external_ref: str) -> User | None:
    row = conn.execute(select(users).where(users.c.external_ref == external_ref)).first()
    return None if row is None else _to_user(row)


def search_users(conn: Connection, query: str, limit: int) -> list[User]:
    """Users whose handle or e-mail contains ``query`` (or whose id it is): exact matches
    first, then by handle. Case-insensitive: both are stored lowercase."""
    assert 0 < limit <= SEARCH_MAX_USERS
    wanted = query.strip().lower()
    assert wanted, "an empty search lists nobody"
    # LIKE wildcards in the query are literal characters here, not patterns.
    pattern = "%" + wanted.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    matches: list[ColumnElement[bool]] = [
        users.c.handle.like(pattern, escape="\\"),
        users.c.email.like(pattern, escape="\\"),
    ]
    exact: list[ColumnElement[bool]] = [users.c.handle == wanted, users.c.email == wanted]
    if wanted.isascii() and wanted.isdigit() and 0 < int(wanted) < 2**63:
        matches.append(users.c.id == int(wanted))
        exact.append(users.c.id == int(wanted))
    first = case((or_(*exact), 0), else_=1)
    rows = conn.execute(
        select(users).where(or_(*matches)).order_by(first, users.c.handle).limit(limit)
    ).all()
    return [_to_user(r) for r in rows]


def set_status(conn: Connection, user_id: int, status: UserStatus) -> User:
    get_user(conn, user_id)
    conn.execute(update(users).where(users.c.id == user_id).values(status=status.value))
    return get_user(conn, user_id)


def set_role(conn: Connection, user_id: int, role: Role) -> User:
    get_user(conn, user_id)
    conn.execute(update(users).where(users.c.id == user_id).values(role=role.value))
    return get_user(conn, user_id)


def set_age_verified(conn: Connection, user_id: int, verified: bool) -> User:
    get_user(conn, user_id)
    conn.execute(update(users).where(users.c.id == user_id).values(age_verified=verified))
    return get_user(conn, user_id)


def find_by_handle(conn: Connection, handle: str) -> User | None:
    """A user by handle (stored lowercase); None for anything that is not a handle."""
    wanted = handle.lower()
    if not HANDLE_RE.fullmatch(wanted):
        return None
    row = conn.execute(select(users).where(users.c.handle == wanted)).first()
    return None if row is None else _to_user(row)


def become_creator(
    conn: Connection, user_id: int, age_rule: AgeRule, today: date
) -> tuple[User, bool]:
    """A viewer takes the creator role: (the user, whether this call changed it).

    Read from the database, not a session's cached user: a block or an admin's change counts
    at once. A creator is left as they are (asking twice is not an error), and so is an admin,
    whose role already reaches every creator page but would be lost as a creator's. Creators
    receive gifts, so they must be of the age the economy asks for (``require_creator_age``)."""
    user = get_user(conn, user_id)
    require_active(user)
    if user.role is not Role.VIEWER:
        return user, False
    require_creator_age(age_rule, user.birth_date, user.country, today)
    # Conditional: an admin's change between the read and this write is not overwritten.
    changed = conn.execute(
        update(users)
        .where(users.c.id == user_id, users.c.role == Role.VIEWER.value)
        .values(role=Role.CREATOR.value)
    ).rowcount
    return get_user(conn, user_id), changed > 0


def require_active(user: User) -> None:
    if user.blocked:
        raise Forbidden(Code.ACCOUNT_BLOCKED, "this account is blocked")
