"""The gift route is answered by hand before the framework (``Giftwave.__call__``, then
``streams.send_gift_by_hand``): it must answer exactly as FastAPI's generic path would — the
same problems for the same bad input, the same receipt, the app's own handler for an error
nobody expected — and stay documented in the OpenAPI schema."""

from __future__ import annotations

from economy_client import ADMIN, AppFactory, assert_problem, economy_app, register

from giftwave.api.state import app_services
from giftwave.economy.gifting import GiftSent

__all__ = ["economy_app"]


async def test_the_gift_route_answers_like_every_other_route(economy_app: AppFactory) -> None:
    async with economy_app() as client:
        creator = await register(client, "creator")
        viewer = await register(client)
        stream_id = await creator.go_live()
        r = await client.post(
            f"/v1/admin/users/{viewer.id}/coins",
            json={"coins": 10, "idempotency_key": "route"},
            headers=ADMIN,
        )
        assert r.status_code == 200, r.text
        path = f"/v1/streams/{stream_id}/gifts"

        sent = await viewer.post(path, {"gift_id": "rose", "count": 2, "idempotency_key": "a"})
        assert sent.status_code == 201, sent.text
        assert sent.headers["content-type"] == "application/json"
        body = sent.json()
        assert body.keys() == {
            "send_id", "stream_id", "creator_id", "sender_id", "gift_id", "gift_version",
            "count", "coins", "diamonds", "balance_coins", "created_at_us",
        }  # fmt: skip
        assert body["sender_id"] == viewer.id
        # The socket's send_gift ack carries exactly these fields (GiftSent.as_dict): the
        # receipt's, not whether this answer was a replay (which only the server acts on).
        assert body.keys() == set(GiftSent.__dataclass_fields__) - {"replayed"}
        assert (body["count"], body["coins"], body["balance_coins"]) == (2, 2, 8)
        again = await viewer.post(path, {"gift_id": "rose", "count": 2, "idempotency_key": "a"})
        assert again.json() == body  # the same key: the same receipt, no second charge

        # Bad bodies: the generic route (goals) and the gift route say it the same way.
        json_type = {"Content-Type": "application/json"}
        rose = b'{"gift_id": "rose", "idempotency_key": "t"}'
        for raw, field, headers in (
            (b"{", None, json_type),
            (b'{"gift_id": 5}', "gift_id", json_type),
            (b"[]", None, json_type),
            (rose, None, {}),  # not said to be JSON: not read as JSON
            (rose, None, {"Content-Type": "text/plain"}),
        ):
            for url, method in ((path, client.post), (f"/v1/streams/{stream_id}/goal", client.put)):
                who = viewer.auth if url == path else creator.auth
                r = await method(url, content=raw, headers={**who, **headers})
                problem = assert_problem(r, 422, "invalid_request")
                assert all(e["loc"][0] == "body" for e in problem["errors"]), problem
                if field:
                    assert ["body", field] in [e["loc"] for e in problem["errors"]], problem
        extra = await viewer.post(path, {"gift_id": "rose", "idempotency_key": "b", "x": 1})
        errors = assert_problem(extra, 422, "invalid_request")["errors"]
        assert ["body", "x"] in [e["loc"] for e in errors]
        huge = {"gift_id": "rose", "idempotency_key": "h", "pad": "x" * 5000}
        assert_problem(await viewer.post(path, huge), 413, "payload_too_large")
        assert_problem(await client.post(path, json={"gift_id": "rose"}), 401, "unauthorized")
        bad_token = await client.post(
            path, json={"gift_id": "rose"}, headers={"Authorization": "Bearer nope"}
        )
        assert_problem(bad_token, 401, "unauthorized")
        assert_problem(
            await viewer.post(path, {"gift_id": "lion", "idempotency_key": "c"}),
            402,
            "insufficient_coins",
        )
        assert await viewer.coins() == 8  # nothing of the refused ones was charged

        # Paths the router answers, as before: another method, a path that is not one id.
        assert_problem(await client.get(path), 405, "method_not_allowed")
        assert_problem(await viewer.post("/v1/streams/a/b/gifts", {}), 404, "not_found")
        assert_problem(await viewer.post("/v1/streams/%01/gifts", {}), 404, "not_found")
        missing = await viewer.post(
            "/v1/streams/nope/gifts", {"gift_id": "rose", "idempotency_key": "d"}
        )
        assert_problem(missing, 404, "stream_not_found")

        # An error nobody expected: the app's own handler answers it (problem+json, logged).
        economy = app_services(client.app).economy

        async def broken(_: object) -> None:
            raise RuntimeError("a bug")

        economy.gifting.send, kept = broken, economy.gifting.send
        try:
            bug = await viewer.post(path, {"gift_id": "rose", "idempotency_key": "e"})
        finally:
            economy.gifting.send = kept
        assert_problem(bug, 500, "internal_error")

        schema = (await client.get("/openapi.json")).json()
        operation = schema["paths"]["/v1/streams/{stream_id}/gifts"]["post"]
        assert "201" in operation["responses"]
        assert "SendGiftIn" in str(operation["requestBody"])
