"""Webhook bodies, byte for byte (docs/webhooks.md): receivers verify the signature over these
exact bytes and parse these exact fields. ``webhook_bodies.jsonl`` was recorded from the code
before the bodies became typed values, one body a line in the order built below."""

from __future__ import annotations

from pathlib import Path

from giftwave.economy.gifting import GiftSent
from giftwave.economy.paid_messages import PaidMessageSent
from giftwave.economy.reversals import GiftReversed, SentGift
from giftwave.economy.subscription_gifts import Recipient, SubsGiven
from giftwave.economy.subscriptions import (
    ChangeKind,
    Subscription,
    SubscriptionChange,
    SubStatus,
)
from giftwave.live.battles import Battle, BattleStatus, Side, Winner
from giftwave.live.events import ThankedUser
from giftwave.live.goals import Goal, GoalKind
from giftwave.live.thanks import Thanks
from giftwave.social.level_follower import LevelUp
from giftwave.webhooks import combos, events

GOLDEN = Path(__file__).parent.parent / "fixtures" / "golden" / "webhook_bodies.jsonl"
T0 = 1_700_000_000_000_000

SENT = GiftSent(
    send_id="gift:10:tap-1",
    stream_id="st_g",
    creator_id=1,
    sender_id=10,
    gift_id="rose",
    gift_version=2,
    count=3,
    coins=3,
    diamonds=3,
    balance_coins=97,
    created_at_us=T0 + 5,
)
REVERSED = GiftReversed(
    send_id="gift:10:tap-1",
    coins_returned=3,
    diamonds_taken=2,
    diamonds_debt=1,
    gift=SentGift(
        send_id="gift:10:tap-1",
        stream_id="st_g",
        sender_id=10,
        sender_handle="u10",
        creator_id=1,
        creator_handle="ana",
        gift_id="rose",
        gift_version=2,
        count=3,
        coins=3,
        diamonds=3,
        reversed=True,
        created_at_us=T0 + 5,
    ),
    reversed_at_us=T0 + 9,
)
GOAL = Goal(3, "st_g", GoalKind.COINS, None, 500, 'Lions \u00e9 "x"', T0)
BATTLE = Battle(
    id=7,
    a=Side("st_g", 1, "ana"),
    b=Side("st_h", 2, "bo"),
    status=BattleStatus.ENDED,
    duration_s=60,
    created_at_us=T0,
    started_at_us=T0 + 1,
    ends_at_us=T0 + 60_000_000,
    ended_at_us=T0 + 61_000_000,
    score_a=3,
    score_b=0,
    winner=Winner.A,
)


def _battle_ended(battle: Battle, creator_id: int, at_us: int) -> events.Event:
    return events.battle_ended_event(battle, creator_id, at_us)


def _bodies() -> list[str]:
    built = [
        events.gift_event(SENT, "u10"),
        events.gift_reversed_event(REVERSED),
        events.combo_end_event(
            creator_id=1,
            stream_id="st_g",
            combo_id="gift:10:tap-1",
            sender_id=10,
            sender_handle="u10",
            gift_id="rose",
            count=57,
            coins=57,
            diamonds=57,
            sends=20,
            started_at_us=T0,
            last_at_us=T0 + 7,
        ),
        combos.single_combo_end(SENT, "u10", T0 + 8),
        events.goal_reached_event(GOAL, 1, 502, T0 + 9),
        events.goal_reached_event(GOAL, 1, None, T0 + 9),
        _battle_ended(BATTLE, 2, T0 + 61_000_001),
    ]
    return [event.body() for event in built]


def test_every_body_is_the_recorded_bytes() -> None:
    assert [b.encode() for b in _bodies()] == GOLDEN.read_bytes().splitlines()


def test_a_ping_says_what_it_is() -> None:
    body = events.ping_event(5, 1, T0).body()
    assert body.startswith('{"id":"ping:')
    assert body.endswith(
        '","type":"ping","created_at_us":1700000000000000,"creator_id":1,'
        '"data":{"endpoint_id":5,"message":"a test delivery from giftwave"}}'
    )


def test_a_level_up_body() -> None:
    up = LevelUp(
        user_id=10,
        handle="u10",
        level=12,
        stream_id="st_g",
        creator_id=1,
        send_id="gift:10:tap-1",
        at_us=T0,
        hidden=False,
    )
    assert events.level_up_event(up).body() == (
        '{"id":"level_up:10:12","type":"gifter.level_up","created_at_us":1700000000000000,'
        '"creator_id":1,"data":{"stream_id":"st_g","send_id":"gift:10:tap-1","user_id":10,'
        '"handle":"u10","level":12}}'
    )


def test_a_paid_message_body_is_these_bytes() -> None:
    said = PaidMessageSent(
        send_id="gift:10:tap-2",
        stream_id="st_g",
        creator_id=1,
        sender_id=10,
        sender="u10",
        text='thanks "ana" \u00e9',
        gift_id="hand_hearts",
        coins=500,
        tier=2,
        colour="teal",
        pinned_until_us=T0 + 120_000_005,
        at_us=T0 + 5,
    )
    assert events.paid_message_event(said).body() == (
        '{"id":"paid_message:gift:10:tap-2","type":"chat.paid_message",'
        '"created_at_us":1700000000000005,"creator_id":1,"data":{"stream_id":"st_g",'
        '"send_id":"gift:10:tap-2","sender_id":10,"sender":"u10",'
        '"text":"thanks \\"ana\\" \u00e9","gift_id":"hand_hearts","coins":500,"tier":2,'
        '"colour":"teal","pinned_until_us":1700000120000005}}'
    )


def _started(status: SubStatus, gifted_by: int | None) -> SubscriptionChange:
    sub = Subscription(
        id=4,
        subscriber_id=10,
        creator_id=1,
        price_coins=500,
        status=status,
        months=3,
        paid_until_us=T0 + 30,
        grace_until_us=None,
        cancelled_at_us=None,
        last_failure=None,
    )
    return SubscriptionChange(ChangeKind.STARTED, sub, T0 + 5, gifted_by=gifted_by)


def test_a_subscription_started_body_says_who_gifted_it() -> None:
    paid = events.subscription_event(_started(SubStatus.ACTIVE, None)).body()
    gifted = events.subscription_event(_started(SubStatus.GIFTED, 11)).body()
    head = (
        '{"id":"subscription.started:4:3","type":"subscription.started",'
        '"created_at_us":1700000000000005,"creator_id":1,"data":{"subscription_id":4,'
        '"subscriber_id":10,"price_coins":500,"status":'
    )
    assert paid == head + '"active","months":3,"paid_until_us":1700000000000030,"gifted_by":null}}'
    assert gifted == head + '"gifted","months":3,"paid_until_us":1700000000000030,"gifted_by":11}}'


def test_a_subscriptions_gifted_body_is_these_bytes() -> None:
    given = SubsGiven(
        gift_id="gsub:10:k-1",
        buyer_id=10,
        buyer="u10",
        stream_id="st_g",
        creator_id=1,
        count=2,
        price_coins=500,
        coins=1000,
        diamonds=1000,
        recipients=(Recipient(11, "u11", 1), Recipient(12, "u12", 4)),
        created_at_us=T0 + 5,
        charged=True,
    )
    assert events.subscriptions_gifted_event(given).body() == (
        '{"id":"subscription.gifted:10:k-1","type":"subscription.gifted",'
        '"created_at_us":1700000000000005,"creator_id":1,"data":{"stream_id":"st_g",'
        '"gift_id":"gsub:10:k-1","buyer_id":10,"buyer":"u10","count":2,"price_coins":500,'
        '"coins":1000,"diamonds":1000,"recipients":[{"user_id":11,"handle":"u11","months":1},'
        '{"user_id":12,"handle":"u12","months":4}]}}'
    )


def test_a_thanks_sent_body_is_these_bytes() -> None:
    thanks = Thanks(
        stream_id="st_g",
        creator_id=1,
        stream_title="Friday jazz",
        message='you made "my" night \u00e9',
        to_all=False,
        recipients=[ThankedUser(10, "u10"), ThankedUser(11, "u11")],
        created_at_us=T0 + 5,
        hidden=False,
    )
    assert events.thanks_sent_event(thanks).body() == (
        '{"id":"thanks.sent:st_g","type":"thanks.sent","created_at_us":1700000000000005,'
        '"creator_id":1,"data":{"stream_id":"st_g","title":"Friday jazz",'
        '"message":"you made \\"my\\" night \u00e9","to_all":false,"recipients":'
        '[{"user_id":10,"handle":"u10"},{"user_id":11,"handle":"u11"}]}}'
    )
