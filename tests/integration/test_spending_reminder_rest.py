"""A gift over REST counts toward the viewer's gentle reminders as a socket's gift does, and
the receipt of the gift that made one due carries it (docs/economy.md, "Responsible
spending"); every other receipt is as before, without the field. In-process app, a simulated
clock, both databases."""

from __future__ import annotations

from economy_client import AppFactory, Clock, clock, economy_app, grant, register

__all__ = ["clock", "economy_app"]

MINUTE_H = 1 / 60


async def test_a_rest_gift_counts_and_its_receipt_carries_the_reminder(
    economy_app: AppFactory, clock: Clock
) -> None:
    async with economy_app(spending_reminder_after_min=1, spending_reminder_gap_min=1) as client:
        creator, viewer = await register(client, "creator"), await register(client)
        await grant(client, viewer, 1_000)
        stream = await creator.go_live()

        first = await viewer.gift(stream, key="a")
        assert first.status_code == 201, first.text
        assert "reminder" not in first.json()
        clock.advance(0.8 * MINUTE_H)
        assert "reminder" not in (await viewer.gift(stream, key="b")).json()
        clock.advance(0.3 * MINUTE_H)  # 66 s of gifting, no pause over a minute
        due = await viewer.gift(stream, key="c")
        assert due.status_code == 201, due.text
        assert due.json()["reminder"] == {
            "type": "spending_reminder",
            "reason": "gifting_time",
            "minutes": 1,
            "month_coins": 0,
            "average_month_coins": 0,
        }
        retry = await viewer.gift(stream, key="c")  # the same receipt, not said again
        assert retry.status_code == 201, retry.text
        assert "reminder" not in retry.json()
        assert retry.json()["send_id"] == due.json()["send_id"]
        clock.advance(0.2 * MINUTE_H)
        assert "reminder" not in (await viewer.gift(stream, key="d")).json()  # once a streak
