"""Ledger errors raised to callers (a transfer's own outcome is an ``Outcome``, not an error).

    LedgerError
    ├── InvalidAccount      a malformed account name, asset or owner
    ├── AccountNotFound     no account with that id or name
    └── AccountConflict     the name exists with another asset or other flags

Each carries a stable ``code`` that the API puts in its problem+json answer.
"""

from __future__ import annotations

from typing import ClassVar

from giftwave.errors import Code


class LedgerError(Exception):
    code: ClassVar[Code] = Code.LEDGER_ERROR


class InvalidAccount(LedgerError):
    code = Code.INVALID_ACCOUNT


class AccountNotFound(LedgerError):
    code = Code.ACCOUNT_NOT_FOUND


class AccountConflict(LedgerError):
    code = Code.ACCOUNT_CONFLICT
