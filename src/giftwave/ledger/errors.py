"""Ledger errors raised to callers (a transfer's own outcome is an ``Outcome``, not an error).

    LedgerError
    ├── InvalidAccount      a malformed account name, asset or owner
    ├── AccountNotFound     no account with that id or name
    └── AccountConflict     the name exists with another asset or other flags

Each carries a stable ``code`` that the API puts in its problem+json answer.
"""

from __future__ import annotations

from typing import ClassVar


class LedgerError(Exception):
    code: ClassVar[str] = "ledger_error"


class InvalidAccount(LedgerError):
    code = "invalid_account"


class AccountNotFound(LedgerError):
    code = "account_not_found"


class AccountConflict(LedgerError):
    code = "account_conflict"
