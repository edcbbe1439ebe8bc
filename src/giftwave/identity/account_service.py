"""A person's account, one call each: the unit of work (one transaction) around the rules
of ``users.py`` and ``sessions.py`` (who may be a creator, what a handle may be). Blocking:
a route runs them on a worker thread; it hashes passwords, sets cookies and tells the
nodes."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Engine

from giftwave.identity import sessions, users
from giftwave.identity.sessions import NewSession
from giftwave.identity.users import AgeRule, Role, User


def sign_up(
    db: Engine,
    *,
    handle: str,
    email: str,
    password_hash: str,
    role: Role,
    birth_date: date,
    country: str,
    today: date,
    age_rule: AgeRule,
) -> User:
    """A new account (409 ``Conflict`` naming what is taken; a creator under age: 403)."""
    with db.begin() as conn:
        return users.create_user(
            conn,
            handle=handle,
            email=email,
            password_hash=password_hash,
            role=role,
            birth_date=birth_date,
            country=country,
            today=today,
            age_rule=age_rule,
        )


def start_session(db: Engine, user_id: int, ttl_s: int) -> NewSession:
    with db.begin() as conn:
        return sessions.create_session(conn, user_id, ttl_s)


def end_session(db: Engine, token: str) -> None:
    with db.begin() as conn:
        sessions.end_session(conn, token)


def become_creator(db: Engine, user_id: int, age_rule: AgeRule, today: date) -> tuple[User, bool]:
    """The viewer takes the creator role: (the user, whether this call changed it)."""
    with db.begin() as conn:
        return users.become_creator(conn, user_id, age_rule, today)


def map_external_user(
    db: Engine,
    external_ref: str,
    *,
    handle: str,
    role: Role,
    birth_date: date,
    country: str,
    today: date,
    age_rule: AgeRule,
) -> tuple[User, bool]:
    """The user of a platform's external id, created at its first use: (user, whether new)."""
    with db.begin() as conn:
        existing = users.find_by_external_ref(conn, external_ref)
        if existing is not None:
            return existing, False
        user = users.create_user(
            conn,
            handle=handle,
            role=role,
            birth_date=birth_date,
            country=country,
            today=today,
            age_rule=age_rule,
            external_ref=external_ref,
        )
        return user, True
