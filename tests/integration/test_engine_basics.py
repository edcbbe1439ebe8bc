"""The posting engine end to end on each backend: a gift, idempotency, overdraft, verify."""

from __future__ import annotations

from sqlalchemy import Engine

from giftwave.ledger.accounts import get_account, open_account
from giftwave.ledger.engine import PostingEngine
from giftwave.ledger.model import AccountFlags, Outcome, Transfer, TransferCode
from giftwave.ledger.verify import verify_ledger

GIFT = TransferCode.GIFT


def _open(sa_engine: Engine) -> dict[str, int]:
    no_od = AccountFlags.NO_OVERDRAFT
    with sa_engine.begin() as conn:
        return {
            "issued": open_account(conn, "platform:coins_issued", "COIN").id,
            "spent": open_account(conn, "platform:gifts_spent", "COIN").id,
            "d_issued": open_account(conn, "platform:diamonds_issued", "DIAMOND").id,
            "creator": open_account(conn, "creator:1:diamonds", "DIAMOND", flags=no_od).id,
            "viewer": open_account(conn, "viewer:1:coins", "COIN", flags=no_od).id,
        }


def _gift(a: dict[str, int], key: str, price: int) -> list[Transfer]:
    return [
        Transfer(f"{key}:c", a["viewer"], a["spent"], price, GIFT, linked=True),
        Transfer(f"{key}:d", a["d_issued"], a["creator"], price, GIFT),
    ]


async def test_gift_moves_coins_and_diamonds_once(
    sa_engine: Engine, posting: PostingEngine
) -> None:
    a = _open(sa_engine)
    assert await posting.submit(
        [Transfer("top", a["issued"], a["viewer"], 100, TransferCode.TOPUP)]
    ) == [Outcome.OK]
    assert await posting.submit(_gift(a, "g1", 30)) == [Outcome.OK, Outcome.OK]
    assert await posting.submit(_gift(a, "g1", 30)) == [Outcome.EXISTS, Outcome.EXISTS]
    assert await posting.submit(_gift(a, "g1", 31)) == [
        Outcome.ID_REUSED_WITH_DIFFERENT_FIELDS,
        Outcome.LINKED_EVENT_FAILED,
    ]
    with sa_engine.connect() as conn:
        assert get_account(conn, a["viewer"]).balance == 70
        assert get_account(conn, a["creator"]).balance == 30
        assert verify_ledger(conn).ok


async def test_overdraft_fails_the_linked_pair_only(
    sa_engine: Engine, posting: PostingEngine
) -> None:
    a = _open(sa_engine)
    await posting.submit([Transfer("top", a["issued"], a["viewer"], 10, TransferCode.TOPUP)])
    too_much, fine = _gift(a, "big", 11), _gift(a, "small", 10)
    # Both in one batch: the failing pair must not take the other down with it.
    import asyncio

    r1, r2 = await asyncio.gather(posting.submit(too_much), posting.submit(fine))
    assert r1 == [Outcome.INSUFFICIENT_FUNDS, Outcome.LINKED_EVENT_FAILED]
    assert r2 == [Outcome.OK, Outcome.OK]
    with sa_engine.connect() as conn:
        assert get_account(conn, a["viewer"]).balance == 0
        assert get_account(conn, a["creator"]).balance == 10
        report = verify_ledger(conn)
    assert report.ok, report.problems
