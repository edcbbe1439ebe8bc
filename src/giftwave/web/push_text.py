"""A notice as a browser shows it, written on the server in the recipient's language: the
notice's own fields (what the service worker needs to open the stream and to stop these
notices) and ``notification``: the title, the body, the "stop" action, the language and its
direction, ready to show (``static/push_sw.js`` translates nothing).

The strings are the site's gettext catalogues (``web/i18n.py``), the very ones the inbox page
says the same notices with; a language giftwave does not have is written in English. Handles
are isolated (U+2068 … U+2069) so a Latin handle keeps its shape in an Arabic sentence. The
push sender (``notify/sender.py``) is handed ``render``: the notify package imports no web.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

from giftwave.web.i18n import DEFAULT_LOCALE, LOCALES, N_, text_direction, translations

# The title of each kind of notice (the inbox page's words: templates/inbox.html).
TITLES: Final = {
    "live": N_("@%(handle)s is live"),
    "battle": N_("@%(handle)s started a battle with @%(other)s"),
    "goal": N_("@%(handle)s is close to a goal"),
}
STOP: Final = N_("Stop notices from @%(handle)s")
BODY_MAX_CHARS: Final = 200  # a stream's or goal's title; the whole stays far under 4 KB


class _Handles(dict[str, str]):
    """Placeholder values for a title; a placeholder a translation invented stays blank."""

    def __missing__(self, key: str) -> str:
        return ""


def _handle(value: object) -> str:
    return f"\u2068{value}\u2069" if isinstance(value, str) and value else ""


def notification(notice: dict[str, Any], locale: str) -> dict[str, str]:
    """What the browser shows for ``notice`` in ``locale`` (English when unknown)."""
    lang = locale if locale in LOCALES else DEFAULT_LOCALE
    t = translations(lang)
    template = TITLES.get(str(notice.get("kind")), TITLES["live"])
    values = _Handles(handle=_handle(notice.get("creator")), other=_handle(notice.get("against")))
    body = notice.get("title")
    return {
        "title": t.gettext(template) % values,
        "body": body[:BODY_MAX_CHARS] if isinstance(body, str) else "",
        "stop": t.gettext(STOP) % values,
        "lang": lang,
        "dir": text_direction(lang),
    }


def render(stored: str, locale: str) -> bytes:
    """The push message's plaintext: the stored notice (JSON) with its ``notification``."""
    notice = orjson.loads(stored)
    return orjson.dumps({**notice, "notification": notification(notice, locale)})
