"""A flood of time-zone changes (``PUT /v1/me/notify-settings``): each accepted one tells every
node to drop the viewer's cached spending profile (a broker notice), so the route's allowance
(the notification changes', per user) is also what bounds the notices. Past it: 429
``notify_rate_limited``, and nothing is stored or told."""

from __future__ import annotations

from typing import Any, Final

from economy_client import AppFactory, economy_app, register

from giftwave.api.state import app_services
from giftwave.realtime.notices import UserChanged

TRIES: Final = 30  # past the allowance's burst (notify/service.py: 20 at once)
ZONES: Final = ("Asia/Tokyo", "Europe/Madrid")

__all__ = ["economy_app"]


async def test_a_flood_is_refused_and_tells_no_node(economy_app: AppFactory) -> None:
    async with economy_app() as client:
        viewer = await register(client)
        broker: Any = app_services(client.app).broker  # type: ignore[attr-defined]
        told: list[int] = []
        real_notify = broker.notify

        async def counting(notice: Any) -> None:
            if isinstance(notice, UserChanged) and notice.user_id == viewer.id:
                told.append(notice.user_id)
            await real_notify(notice)

        broker.notify = counting
        answers = []
        for n in range(TRIES):
            r = await client.put(
                "/v1/me/notify-settings",
                json={"time_zone": ZONES[n % 2], "quiet_from_h": 23, "quiet_to_h": 7},
                headers=viewer.auth,
            )
            answers.append(r)
        accepted = [r for r in answers if r.status_code == 200]
        refused = [r for r in answers if r.status_code == 429]
        assert len(accepted) + len(refused) == TRIES, [r.status_code for r in answers]
        assert refused, "no change refused: the flood was not bounded"
        assert all(r.json()["code"] == "notify_rate_limited" for r in refused)
        assert all(r.headers["content-type"] == "application/problem+json" for r in refused)
        assert len(told) == len(accepted)  # a refused change told no node anything
