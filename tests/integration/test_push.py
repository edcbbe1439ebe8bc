"""Never miss it, end to end on both databases: a follower opts in, registers a fake browser
(a real P-256 key pair) with a push-service stub on loopback that verifies the VAPID JWT and
decrypts the aes128gcm payload; going live reaches the inbox and the browser once per stream;
the daily cap, quiet hours (a fixed clock), 410, retries, SSRF and every route's refusals; the
notice's words written on the server in each browser's language (en, es, ar)."""

from __future__ import annotations

import asyncio
from typing import Any

from economy_client import (
    AppFactory,
    Person,
    assert_problem,
    economy_app,
    grant,
    register,
    until,
)
from push_stub import PushService, push_service
from sqlalchemy import Engine, func, insert, select

from giftwave.api.state import app_services
from giftwave.db.tables import notices, notify_optins, push_jobs, push_subscriptions
from giftwave.notify.notices import NoticeKind, NoticePolicy, notify_followers
from giftwave.notify.preferences import QuietHours, add_subscription, opt_in, set_quiet_hours
from giftwave.notify.vapid import VapidKey, generate_private_key

__all__ = ["economy_app"]

PRIVATE_KEY = generate_private_key()
PUBLIC_KEY = VapidKey(PRIVATE_KEY, "mailto:ops@giftwave.test").public_b64
PUSH = {
    "vapid_private_key": PRIVATE_KEY,
    "vapid_subject": "mailto:ops@giftwave.test",
    "push_allow_private_addresses": True,  # the stub is on loopback
    "push_interval_s": 0.05,
    "push_retry_base_ms": 20,
    "notify_fanout_interval_s": 0.05,
}


async def _fan_of(client: Any, creator: Person, stub: PushService, name: str) -> Person:
    fan = await register(client)
    assert (
        await client.put(f"/v1/creators/{creator.id}/notify", headers=fan.auth)
    ).status_code == 201
    made = await fan.post("/v1/me/push-subscriptions", stub.subscription(name))
    assert made.status_code == 201, made.text
    return fan


async def _end(creator: Person, stream_id: str) -> None:
    assert (await creator.post(f"/v1/streams/{stream_id}/end")).status_code == 200


async def test_going_live_reaches_inbox_and_browser_once(economy_app: AppFactory) -> None:
    with push_service(PUBLIC_KEY) as stub:
        async with economy_app(**PUSH) as client:
            assert (await client.get("/v1/push/vapid-key")).json() == {"public_key": PUBLIC_KEY}
            luna = await register(client, "creator")
            fan = await _fan_of(client, luna, stub, "fan")
            bystander = await register(client)  # not opted in: told nothing

            stream_id = await luna.go_live("Piano")
            [message] = await until(lambda: stub.got("fan"))
            assert not stub.refused, stub.refused
            assert message["kind"] == "live"
            assert message["stream_id"] == stream_id
            assert message["creator"] == luna.user["handle"]
            assert message["title"] == "Piano"
            handle = f"@\u2068{luna.user['handle']}\u2069"
            assert message["notification"] == {
                "title": f"{handle} is live",
                "body": "Piano",
                "stop": f"Stop notices from {handle}",
                "lang": "en",
                "dir": "ltr",
            }

            inbox = (await fan.get("/v1/me/inbox")).json()
            assert inbox["unread"] == 1
            [notice] = inbox["notices"]
            assert notice["kind"] == "live"
            assert notice["pushed"] is True
            assert notice["subject"] == stream_id
            assert notice["payload"]["unsubscribe"] == message["unsubscribe"]
            assert (await bystander.get("/v1/me/inbox")).json()["notices"] == []

            # Dedup: the same stream told again adds nothing, in the inbox or the queue.
            services = app_services(client.app)
            again = services.notifications.tell_followers(
                luna.id, NoticeKind.LIVE, stream_id, {"stream_id": stream_id}
            )
            assert again is False  # queued once per subject (notify/fanout.py)
            with services.db.connect() as conn:
                assert conn.execute(select(func.count()).select_from(push_jobs)).scalar_one() == 1

            read = await fan.post(f"/v1/me/inbox/{notice['id']}/read")
            assert read.json() == {"marked": 1}
            assert (await fan.get("/v1/me/inbox")).json()["unread"] == 0

            # One click: the token alone (no session) turns off this creator's notices.
            off = await client.post(
                "/v1/notify/unsubscribe", json={"token": message["unsubscribe"]}
            )
            assert off.status_code == 200, off.text
            assert off.json() == {"creator_id": luna.id, "notify": False}
            await _end(luna, stream_id)
            await luna.go_live("Piano again")
            await asyncio.sleep(0.3)
            assert len(stub.got("fan")) == 1
            assert len((await fan.get("/v1/me/inbox")).json()["notices"]) == 1


async def test_each_browser_is_told_in_its_language(economy_app: AppFactory) -> None:
    with push_service(PUBLIC_KEY) as stub:
        async with economy_app(**PUSH) as client:
            luna = await register(client, "creator")
            max_ = await register(client, "creator")
            fan = await register(client)
            for creator in (luna, max_):
                r = await client.put(f"/v1/creators/{creator.id}/notify", headers=fan.auth)
                assert r.status_code == 201, r.text
            # The page says its language; without it, the site's choice for the request.
            body = stub.subscription("es") | {"locale": "es"}
            assert (await fan.post("/v1/me/push-subscriptions", body)).status_code == 201
            arabic = {"Accept-Language": "ar, en;q=0.5"}
            made = await client.post(
                "/v1/me/push-subscriptions",
                json=stub.subscription("ar"),
                headers=fan.auth | arabic,
            )
            assert made.status_code == 201, made.text
            for bad in ("fr", "x" * 9, "ES"):
                assert_problem(
                    await fan.post("/v1/me/push-subscriptions", body | {"locale": bad}),
                    422,
                    "invalid_request",
                )

            luna_stream = await luna.go_live("Piano")
            max_stream = await max_.go_live("Drums")
            await until(lambda: len(stub.got("es")) == 2 and len(stub.got("ar")) == 2)
            battle = await max_.post(
                "/v1/battles",
                {"stream_id": max_stream, "opponent_stream_id": luna_stream, "duration_s": 60},
            )
            assert battle.status_code == 201, battle.text
            accepted = await luna.post(f"/v1/battles/{battle.json()['id']}/accept")
            assert accepted.status_code == 200, accepted.text
            # One battle notice per user (its subject is the battle): from either side.
            await until(lambda: len(stub.got("es")) == 3 and len(stub.got("ar")) == 3)
            assert not stub.refused, stub.refused

            l_, m_ = (f"@\u2068{p.user['handle']}\u2069" for p in (luna, max_))
            told = {
                name: {(n["kind"], n["stream_id"]): n["notification"] for n in stub.got(name)}
                for name in ("es", "ar")
            }
            assert told["es"][("live", luna_stream)] == {
                "title": f"{l_} está en directo",
                "body": "Piano",
                "stop": f"Dejar de recibir avisos de {l_}",
                "lang": "es",
                "dir": "ltr",
            }
            assert told["ar"][("live", luna_stream)] == {
                "title": f"{l_} في بث مباشر",
                "body": "Piano",
                "stop": f"إيقاف تنبيهات {l_}",
                "lang": "ar",
                "dir": "rtl",
            }
            [said_es] = [v["title"] for (kind, _), v in told["es"].items() if kind == "battle"]
            [said_ar] = [v["title"] for (kind, _), v in told["ar"].items() if kind == "battle"]
            assert said_es in (
                f"{l_} empezó una batalla con {m_}",
                f"{m_} empezó una batalla con {l_}",
            )
            assert said_ar in (f"بدأ {l_} معركة مع {m_}", f"بدأ {m_} معركة مع {l_}")
            # The inbox keeps the notice as stored: the words are the browser's only.
            assert all(
                "notification" not in n["payload"]
                for n in (await fan.get("/v1/me/inbox")).json()["notices"]
            )


async def test_battle_start_and_a_close_goal_are_told(economy_app: AppFactory) -> None:
    with push_service(PUBLIC_KEY) as stub:
        async with economy_app(**PUSH, notify_goal_check_s=0.05) as client:
            luna = await register(client, "creator")
            max_ = await register(client, "creator")
            fan = await _fan_of(client, luna, stub, "fan")
            luna_stream = await luna.go_live("Piano")
            max_stream = await max_.go_live("Drums")
            await until(lambda: stub.got("fan"))

            challenge = await max_.post(
                "/v1/battles",
                {"stream_id": max_stream, "opponent_stream_id": luna_stream, "duration_s": 60},
            )
            assert challenge.status_code == 201, challenge.text
            battle_id = challenge.json()["id"]
            assert (await luna.post(f"/v1/battles/{battle_id}/accept")).status_code == 200
            await until(lambda: len(stub.got("fan")) == 2)
            told = stub.got("fan")[1]
            assert told["kind"] == "battle"
            assert told["battle_id"] == battle_id
            assert told["against"] == max_.user["handle"]

            goal = await client.put(
                f"/v1/streams/{luna_stream}/goal",
                json={"kind": "coins", "target": 10, "title": "New piano"},
                headers=luna.auth,
            )
            assert goal.status_code == 200, goal.text
            gifter = await register(client)
            await grant(client, gifter, 100)
            assert (await gifter.gift(luna_stream, "rose", count=8)).status_code in (200, 201)
            await asyncio.sleep(0.4)  # 8 of 10: not close yet
            assert len(stub.got("fan")) == 2
            assert (await gifter.gift(luna_stream, "rose", count=1)).status_code in (200, 201)
            await until(lambda: len(stub.got("fan")) == 3)
            close = stub.got("fan")[2]
            assert close["kind"] == "goal"
            assert (close["progress"], close["target"], close["title"]) == (9, 10, "New piano")
            assert (await gifter.gift(luna_stream, "rose", count=1)).status_code in (200, 201)
            await asyncio.sleep(0.4)  # reached: still one goal notice
            kinds = [n["kind"] for n in (await fan.get("/v1/me/inbox")).json()["notices"]]
            assert kinds == ["goal", "battle", "live"]


async def test_daily_cap_keeps_the_rest_in_the_inbox(economy_app: AppFactory) -> None:
    with push_service(PUBLIC_KEY) as stub:
        async with economy_app(**PUSH, push_daily_cap=1) as client:
            luna = await register(client, "creator")
            fan = await _fan_of(client, luna, stub, "capped")
            first = await luna.go_live("one")
            await until(lambda: stub.got("capped"))
            await _end(luna, first)
            await luna.go_live("two")
            await asyncio.sleep(0.3)
            assert [m["title"] for m in stub.got("capped")] == ["one"]
            listed = (await fan.get("/v1/me/inbox")).json()["notices"]
            assert [(n["payload"]["title"], n["pushed"]) for n in listed] == [
                ("two", False),
                ("one", True),
            ]


async def test_gone_browser_is_deleted_and_busy_one_retried(economy_app: AppFactory) -> None:
    with push_service(PUBLIC_KEY) as stub:
        async with economy_app(**PUSH) as client:
            luna = await register(client, "creator")
            await _fan_of(client, luna, stub, "gone")
            await _fan_of(client, luna, stub, "busy")
            stub.answers["gone"] = [410]
            stub.answers["busy"] = [503, 429]  # then 201
            await luna.go_live("Piano")
            await until(lambda: stub.got("busy"))
            db = app_services(client.app).db

            def gone_deleted() -> bool:
                with db.connect() as conn:
                    left = conn.execute(select(push_subscriptions.c.endpoint)).scalars().all()
                return not any(e.endswith("/push/gone") for e in left)

            await until(gone_deleted)
            assert stub.got("gone") == []

            def jobs() -> list[tuple[str, int]]:
                with db.connect() as conn:
                    rows = conn.execute(select(push_jobs.c.status, push_jobs.c.attempts)).all()
                return sorted((str(s), int(a)) for s, a in rows)

            # The stub counts a push before its answer is back and recorded: wait for both.
            await until(lambda: jobs() == [("failed", 1), ("sent", 3)])


async def test_sender_never_connects_to_a_private_address(economy_app: AppFactory) -> None:
    """A subscription whose host resolves to loopback (stored before the rule, or a name that
    changed) is refused at send time when private addresses are not allowed."""
    with push_service(PUBLIC_KEY) as stub:
        async with economy_app(**{**PUSH, "push_allow_private_addresses": False}) as client:
            luna = await register(client, "creator")
            fan = await register(client)
            assert (
                await client.put(f"/v1/creators/{luna.id}/notify", headers=fan.auth)
            ).status_code == 201
            sub = stub.subscription("inside")
            db = app_services(client.app).db
            with db.begin() as conn:
                conn.execute(
                    insert(push_subscriptions).values(
                        user_id=fan.id,
                        endpoint=sub["endpoint"].replace("127.0.0.1", "localhost"),
                        p256dh=sub["keys"]["p256dh"],
                        auth=sub["keys"]["auth"],
                        created_at_us=0,
                    )
                )
            await luna.go_live("Piano")

            def failed() -> bool:
                with db.connect() as conn:
                    return conn.execute(select(push_jobs.c.status)).scalar() == "failed"

            await until(failed)
            assert stub.got("inside") == []
            assert stub.refused == []


def test_quiet_hours_by_the_users_zone(sa_engine: Engine) -> None:
    """Asia/Tokyo, quiet 22-7: at 23:30 there the notice is in the inbox, not pushed; at noon
    it is pushed. A fixed clock (UTC 14:30 = Tokyo 23:30)."""
    policy = NoticePolicy(daily_cap=5, unsubscribe_key=b"k" * 32)
    late_us = 1_796_567_400 * 1_000_000  # 2026-12-06T14:30:00Z
    noon_us = late_us - 11 * 3600 * 1_000_000 - 30 * 60 * 1_000_000  # 03:00Z = 12:00 Tokyo
    with sa_engine.begin() as conn:
        opt_in(conn, 1, 99, 0)
        set_quiet_hours(conn, 1, QuietHours("Asia/Tokyo", 22, 7), 0)
        add_subscription(
            conn,
            1,
            endpoint="https://push.example/a",
            p256dh="B" + "A" * 86,
            auth="A" * 22,
            allow_private=False,
            at_us=0,
        )
        for subject, at in (("late", late_us), ("noon", noon_us)):
            assert (
                notify_followers(
                    conn,
                    policy,
                    creator_id=99,
                    kind=NoticeKind.LIVE,
                    subject=subject,
                    payload={},
                    now_us=at,
                )
                == 1
            )
        pushed = dict(conn.execute(select(notices.c.subject, notices.c.pushed)).all())
        assert pushed == {"late": False, "noon": True}
        assert conn.execute(select(func.count()).select_from(push_jobs)).scalar_one() == 1
        assert conn.execute(select(func.count()).select_from(notify_optins)).scalar_one() == 1


async def test_refusals(economy_app: AppFactory) -> None:
    with push_service(PUBLIC_KEY) as stub:
        async with economy_app(**{**PUSH, "push_allow_private_addresses": False}) as client:
            luna = await register(client, "creator")
            fan = await register(client)
            other = await register(client)
            good = stub.subscription("x")
            good["endpoint"] = "https://push.example.net/x"

            for method, path in (
                ("PUT", f"/v1/creators/{luna.id}/notify"),
                ("DELETE", f"/v1/creators/{luna.id}/notify"),
                ("POST", "/v1/me/push-subscriptions"),
                ("GET", "/v1/me/inbox"),
                ("POST", "/v1/me/inbox/read"),
                ("PUT", "/v1/me/notify-settings"),
            ):
                assert_problem(await client.request(method, path, json={}), 401, "unauthorized")
            assert_problem(
                await client.put(f"/v1/creators/{fan.id}/notify", headers=fan.auth),
                422,
                "notify_self",
            )
            assert_problem(
                await client.put("/v1/creators/999999/notify", headers=fan.auth),
                404,
                "user_not_found",
            )
            for endpoint, code in (
                ("http://push.example.net/x", "invalid_push_subscription"),  # not https
                ("https://127.0.0.1/x", "push_endpoint_not_allowed"),
                ("https://10.0.0.7/x", "push_endpoint_not_allowed"),
                ("https://169.254.169.254/latest", "push_endpoint_not_allowed"),
                ("https://[::1]/x", "push_endpoint_not_allowed"),
                ("https://localhost/x", "push_endpoint_not_allowed"),
                ("https://u:p@push.example.net/x", "invalid_push_subscription"),
                ("https://push.example.net/" + "x" * 1100, "invalid_request"),
            ):
                bad = {**good, "endpoint": endpoint}
                assert_problem(await fan.post("/v1/me/push-subscriptions", bad), 422, code)
            for keys in (
                {"p256dh": "AAAA", "auth": good["keys"]["auth"]},
                {"p256dh": good["keys"]["p256dh"], "auth": "AAAA"},
            ):
                assert_problem(
                    await fan.post("/v1/me/push-subscriptions", {**good, "keys": keys}),
                    422,
                    "invalid_push_subscription",
                )
            many = await register(client)  # its own allowance of changes
            for n in range(10):
                made = await many.post(
                    "/v1/me/push-subscriptions",
                    {**good, "endpoint": f"https://push.example.net/{n}"},
                )
                assert made.status_code == 201, made.text
            assert_problem(
                await many.post(
                    "/v1/me/push-subscriptions", {**good, "endpoint": "https://push.example.net/11"}
                ),
                409,
                "too_many_push_subscriptions",
            )
            bad_zone = {"time_zone": "Mars/Olympus", "quiet_from_h": 22, "quiet_to_h": 7}
            assert_problem(
                await client.put("/v1/me/notify-settings", json=bad_zone, headers=many.auth),
                422,
                "invalid_time_zone",
            )
            zone = {"time_zone": "../../etc/passwd", "quiet_from_h": 22, "quiet_to_h": 7}
            assert_problem(
                await client.put("/v1/me/notify-settings", json=zone, headers=many.auth),
                422,
                "invalid_time_zone",
            )
            # Someone else's notice is not found (nor marked).
            await client.put(f"/v1/creators/{luna.id}/notify", headers=other.auth)
            await luna.go_live("Piano")

            async def inbox_of_other() -> Any:
                return (await other.get("/v1/me/inbox")).json()["notices"]

            for _ in range(100):  # told by the fan-out loop, just after the go-live answered
                if await inbox_of_other():
                    break
                await asyncio.sleep(0.05)
            [theirs] = await inbox_of_other()
            assert_problem(
                await fan.post(f"/v1/me/inbox/{theirs['id']}/read"), 404, "notice_not_found"
            )
            token = theirs["payload"]["unsubscribe"]
            forged = (
                token.rsplit(".", 1)[0].replace(f"{other.id}.", f"{fan.id}.", 1)
                + "."
                + token.rsplit(".", 1)[1]
            )
            # The MAC's first character changed: six of its bits differ whatever it was (the
            # last characters of base64 carry padding bits a decoder may drop, so changing them
            # may leave the same bytes: it did for the tokens of one CI run).
            sig = token.rsplit(".", 1)[1]
            tampered = token.rsplit(".", 1)[0] + "." + ("B" if sig[0] == "A" else "A") + sig[1:]
            for bad_token in (forged, tampered, "1.2", "x" * 100):
                assert_problem(
                    await client.post("/v1/notify/unsubscribe", json={"token": bad_token}),
                    422,
                    "invalid_unsubscribe_token",
                )
            assert_problem(
                await client.post("/v1/notify/unsubscribe", json={"token": "x" * 101}),
                422,
                "invalid_request",
            )


async def test_changes_are_rate_limited(economy_app: AppFactory) -> None:
    async with economy_app(**PUSH) as client:
        luna = await register(client, "creator")
        fan = await register(client)
        answers = [
            (await client.put(f"/v1/creators/{luna.id}/notify", headers=fan.auth)).status_code
            for _ in range(25)
        ]
        assert answers.count(429) >= 1
        last = await client.put(f"/v1/creators/{luna.id}/notify", headers=fan.auth)
        assert_problem(last, 429, "notify_rate_limited")
        # Unsubscribing needs no login: it is limited per client address instead.
        tries = [
            (await client.post("/v1/notify/unsubscribe", json={"token": "1.2.AAAA"})).status_code
            for _ in range(25)
        ]
        assert tries[:20] == [422] * 20
        assert 429 in tries[20:]
        assert_problem(
            await client.post("/v1/notify/unsubscribe", json={"token": "1.2.AAAA"}),
            429,
            "notify_rate_limited",
        )


def test_daily_cap_restarts_at_the_users_midnight(sa_engine: Engine) -> None:
    """Cap 1 in Pacific/Auckland (UTC+13 in December): 23:30 pushed, 23:45 kept in the inbox
    only, 00:15 the next local day pushed again, though it is the same UTC day throughout."""
    policy = NoticePolicy(daily_cap=1, unsubscribe_key=b"k" * 32)
    minute_us = 60 * 1_000_000
    late_us = 1_796_553_000 * 1_000_000  # 2026-12-06T10:30:00Z = 23:30 in Auckland
    with sa_engine.begin() as conn:
        opt_in(conn, 1, 99, 0)
        set_quiet_hours(conn, 1, QuietHours("Pacific/Auckland", 0, 0), 0)  # never quiet
        add_subscription(
            conn,
            1,
            endpoint="https://push.example/a",
            p256dh="B" + "A" * 86,
            auth="A" * 22,
            allow_private=False,
            at_us=0,
        )
        for subject, at in (
            ("a", late_us),
            ("b", late_us + 15 * minute_us),
            ("c", late_us + 45 * minute_us),
        ):
            notify_followers(
                conn,
                policy,
                creator_id=99,
                kind=NoticeKind.LIVE,
                subject=subject,
                payload={},
                now_us=at,
            )
        pushed = dict(conn.execute(select(notices.c.subject, notices.c.pushed)).all())
        assert pushed == {"a": True, "b": False, "c": True}
