"""Opening and reading accounts: plain SQLAlchemy Core on any connection."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, Row, select, update

from giftwave.db.tables import accounts, ledger_head
from giftwave.db.upsert import insert_for
from giftwave.ledger.engine import now_us
from giftwave.ledger.errors import AccountConflict, AccountNotFound, InvalidAccount
from giftwave.ledger.model import ACCOUNT_NAME_RE, ASSET_RE, Account, AccountFlags


def to_account(row: Row[tuple[object, ...]]) -> Account:
    m = row._mapping
    return Account(
        id=int(m["id"]),
        name=str(m["name"]),
        asset=str(m["asset"]),
        owner=str(m["owner"]),
        flags=AccountFlags(int(m["flags"])),
        debits_pending=int(m["debits_pending"]),
        debits_posted=int(m["debits_posted"]),
        credits_pending=int(m["credits_pending"]),
        credits_posted=int(m["credits_posted"]),
    )


@dataclass(frozen=True, slots=True)
class AccountSpec:
    """An account to open: its unique name, asset, flags and owner."""

    name: str
    asset: str
    flags: AccountFlags = AccountFlags.NONE
    owner: str = ""

    def check(self) -> None:
        if not ACCOUNT_NAME_RE.fullmatch(self.name) or self.name.isdigit():
            # All digits would read as an account id wherever an id or a name is accepted.
            raise InvalidAccount(
                "name must be 1-128 of a-z, 0-9, '_', '.', ':', '-', and not only digits"
            )
        if not ASSET_RE.fullmatch(self.asset):
            raise InvalidAccount(
                "asset must be COIN, DIAMOND, CDIAMOND or a three-letter currency code"
            )
        if len(self.owner) > 128 or not self.owner.isprintable():
            raise InvalidAccount("owner must be at most 128 printable characters")


def open_account(
    conn: Connection,
    name: str,
    asset: str,
    *,
    flags: AccountFlags = AccountFlags.NONE,
    owner: str = "",
) -> Account:
    """Create the account, or return it if it already exists with the same asset and flags.

    Idempotent by name, like a transfer by id: the same request twice is one account.
    """
    (account,) = open_accounts(conn, [AccountSpec(name, asset, AccountFlags(int(flags)), owner)])
    return account


def open_accounts(conn: Connection, specs: Sequence[AccountSpec]) -> list[Account]:
    """``open_account`` for several accounts in three statements whatever their number (read
    the names, insert the missing ones unless someone just did, read those): a new user's four
    accounts were twenty statements."""
    for spec in specs:
        spec.check()
    names = [spec.name for spec in specs]
    found = _by_names(conn, names)
    missing = [spec for spec in specs if spec.name not in found]
    if missing:
        at = now_us()
        conn.execute(
            insert_for(conn, accounts).on_conflict_do_nothing(index_elements=["name"]),
            [
                {
                    "name": s.name,
                    "asset": s.asset,
                    "flags": int(s.flags),
                    "owner": s.owner,
                    "created_at_us": at,
                }
                for s in missing
            ],
        )  # one opened concurrently elsewhere stays theirs: compared below
        found |= _by_names(conn, [s.name for s in missing])
    opened = []
    for spec in specs:
        existing = found[spec.name]
        if existing.asset != spec.asset or existing.flags != AccountFlags(int(spec.flags)):
            raise AccountConflict(
                f"account {spec.name!r} exists with asset {existing.asset} and other flags"
            )
        opened.append(existing)
    return opened


def _by_names(conn: Connection, names: list[str]) -> dict[str, Account]:
    rows = conn.execute(select(accounts).where(accounts.c.name.in_(names))).all()
    return {a.name: a for a in map(to_account, rows)}


def find_account(conn: Connection, key: str | int) -> Account | None:
    """An account by numeric id or by name; ``None`` for anything that cannot be one."""
    if isinstance(key, str) and key.isascii() and key.isdigit():
        key = int(key)
    if isinstance(key, int):
        if not 0 < key < 2**63:
            return None
        query = select(accounts).where(accounts.c.id == key)
    elif ACCOUNT_NAME_RE.fullmatch(key):
        query = select(accounts).where(accounts.c.name == key)
    else:
        return None
    row = conn.execute(query).first()
    return None if row is None else to_account(row)


def get_account(conn: Connection, key: str | int) -> Account:
    account = find_account(conn, key)
    if account is None:
        raise AccountNotFound(f"no account {key!r}")
    return account


def set_account_flags(conn: Connection, key: str | int, flags: AccountFlags) -> Account:
    """Freeze or unfreeze an account; balances are untouched (only the writer changes those).

    Takes the chain head first, like a batch, and bumps its ``accounts_version``: no batch can
    plan against the old flags once this commits, and writers drop cached account states.
    """
    conn.execute(
        update(ledger_head)
        .where(ledger_head.c.id == 1)
        .values(accounts_version=ledger_head.c.accounts_version + 1)
    )
    account = get_account(conn, key)
    conn.execute(update(accounts).where(accounts.c.id == account.id).values(flags=int(flags)))
    return get_account(conn, account.id)
