"""The double-entry ledger: accounts, transfers, the posting engine, stores, verification.

No web imports here: the API and the economy use this package, never the reverse.
"""

from giftwave.ledger.engine import EngineStopped, LedgerUnavailable, PostingEngine
from giftwave.ledger.model import (
    Account,
    AccountFlags,
    Outcome,
    Transfer,
    TransferCode,
    TransferKind,
)

__all__ = [
    "Account",
    "AccountFlags",
    "EngineStopped",
    "LedgerUnavailable",
    "Outcome",
    "PostingEngine",
    "Transfer",
    "TransferCode",
    "TransferKind",
]
