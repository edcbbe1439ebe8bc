"""A push notice's words, pure: each kind in each language, a language giftwave does not have
in English, handles isolated, the stored notice's fields kept beside them."""

from __future__ import annotations

import orjson

from giftwave.web.push_text import notification, render

LUNA = "@\u2068luna\u2069"


def test_each_kind_in_each_language() -> None:
    live = {"kind": "live", "creator": "luna", "title": "Piano"}
    assert notification(live, "es")["title"] == f"{LUNA} está en directo"
    assert notification(live, "ar")["title"] == f"{LUNA} في بث مباشر"
    assert notification(live, "ar")["dir"] == "rtl"
    goal = {"kind": "goal", "creator": "luna", "title": "New piano"}
    assert notification(goal, "en") == {
        "title": f"{LUNA} is close to a goal",
        "body": "New piano",
        "stop": f"Stop notices from {LUNA}",
        "lang": "en",
        "dir": "ltr",
    }
    battle = {"kind": "battle", "creator": "luna", "against": "max"}
    assert (
        notification(battle, "es")["title"]
        == "@\u2068luna\u2069 empezó una batalla con @\u2068max\u2069"
    )
    assert notification(battle, "es")["body"] == ""


def test_an_unknown_language_is_english_and_the_notice_is_kept() -> None:
    stored = orjson.dumps({"kind": "live", "creator": "luna", "unsubscribe": "t"}).decode()
    pushed = orjson.loads(render(stored, "fr"))
    assert pushed["unsubscribe"] == "t"
    assert pushed["notification"]["lang"] == "en"
    assert pushed["notification"]["title"] == f"{LUNA} is live"
