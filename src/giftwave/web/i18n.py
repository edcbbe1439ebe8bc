"""Languages of the web pages: English, Spanish and Arabic (right-to-left).

Messages live in Babel catalogs (``web/locale/<lang>/LC_MESSAGES/messages.po``), read once per
process and compiled in memory: no compiled ``.mo`` file to keep in step with its source.
``make messages`` extracts new strings from the templates and from this package's Python and
merges them into the catalogs; a test demands that every one is translated.

The page's language is, in order: ``?lang=`` (remembered in a cookie), that cookie, the
browser's ``Accept-Language``, English.
"""

from __future__ import annotations

import gettext
from functools import cache
from io import BytesIO
from pathlib import Path
from typing import Final

from babel import Locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from starlette.requests import HTTPConnection

LOCALES: Final = ("en", "es", "ar")
DEFAULT_LOCALE: Final = "en"
LANG_COOKIE: Final = "gw_lang"
LOCALE_DIR: Final = Path(__file__).resolve().parent / "locale"
LANGUAGE_NAMES: Final = {"en": "English", "es": "Español", "ar": "العربية"}


def N_(message: str) -> str:
    """Marks a string for extraction; it is translated where it is shown."""
    return message


# Strings the pages' scripts show. They are translated on the server and handed to the script
# with the page (``i18n.js``); placeholders are ``{name}``.
CLIENT_MESSAGES: Final = (
    N_("{sender} sent {gift}"),
    N_("{gift} sent"),
    N_("Log in"),
    N_("Log in to send gifts"),
    N_("Log in to chat"),
    N_("Log in to like"),
    N_("Not enough coins"),
    N_("Buy coins"),
    N_("Slow down a little"),
    N_("This stream has ended"),
    N_("Reconnecting…"),
    N_("Connected"),
    N_("Something went wrong"),
    N_("You are muted"),
    N_("{name} wins"),
    N_("Draw"),
    N_("Starts in {seconds}"),
    N_("{handle} joined"),
    N_("Goal reached!"),
    N_("You have been sending gifts for {minutes} minutes. Time for a break?"),
    N_("This month you have spent more than in your average month."),
    N_("Your spending"),
    N_("Dismiss"),
    N_("Message deleted"),
    N_("Coins added: {coins}"),
    N_("Waiting for the payment…"),
    N_("The payment was declined"),
    N_("Paid"),
    N_("Refunded"),
    N_("Partly refunded"),
    N_("Disputed"),
    N_("Saved"),
    N_("Visitors: {count}"),
    N_("No gifts yet"),
    N_("Be the first to gift"),
    # Each chat line's menu (moderation.js), in the room and in the studio.
    N_("Delete"),
    N_("Mute for {minutes} minutes"),
    N_("Mute for an hour"),
    N_("Mute for a day"),
    N_("Ban from all rooms"),
    N_("Report as spam"),
    N_("Report as harassment"),
    N_("Report as hate"),
    N_("Report for another reason"),
    N_("Actions for the message of {handle}"),
    N_("{handle} is muted"),
    N_("{handle} is banned from all rooms of this creator"),
    N_("Thank you: the moderators will look at it"),
    N_("Only the creator and their moderators can do this"),
    N_("Only the creator can ban a moderator"),
    N_("The creator cannot be banned"),
    N_("That message is no longer in the chat"),
    N_("The creator banned you from their rooms"),
    N_("Ended"),
    # Gifter levels: the badge's title, the room's "ana reached level 12".
    N_("Level {level}"),
    N_("{handle} reached level {level}"),
    # Gifted subscriptions in the room (live.js, overlay.js).
    N_("Received by:"),
    N_("{handle} gifted you a subscription!"),
    # A creator's thank-you to their last stream's supporters (live.js).
    N_("Thanks to {names} for last stream's support"),
    N_("The creator thanked you for your support!"),
)


def _compile(locale: str) -> gettext.NullTranslations:
    if locale == DEFAULT_LOCALE:
        return gettext.NullTranslations()
    path = LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as po:
        catalog = read_po(po, locale=locale)
    mo = BytesIO()
    write_mo(mo, catalog)  # fuzzy entries are left out, as msgfmt would
    mo.seek(0)
    return Translations(mo, domain="messages")


@cache
def translations(locale: str) -> gettext.NullTranslations:
    return _compile(locale if locale in LOCALES else DEFAULT_LOCALE)


def text_direction(locale: str) -> str:
    return "rtl" if Locale.parse(locale).character_order == "right-to-left" else "ltr"


def client_messages(locale: str, page_messages: tuple[str, ...] = ()) -> dict[str, str]:
    """What every page's scripts show, and ``page_messages``: strings only one page needs."""
    t = translations(locale)
    return {m: t.gettext(m) for m in CLIENT_MESSAGES + page_messages}


def _accepted(header: str) -> list[str]:
    """``Accept-Language`` as language codes, most wanted first (RFC 9110 q-values)."""
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                continue
        if tag and tag != "*" and q > 0:
            ranked.append((-q, i, tag.strip().split("-")[0].lower()))
    return [tag for _, _, tag in sorted(ranked)]


def negotiate(connection: HTTPConnection) -> tuple[str, bool]:
    """The page's language, and whether it was chosen now (``?lang=``: remember it)."""
    asked = connection.query_params.get("lang", "")
    if asked in LOCALES:
        return asked, True
    remembered = connection.cookies.get(LANG_COOKIE, "")
    if remembered in LOCALES:
        return remembered, False
    for tag in _accepted(connection.headers.get("accept-language", "")):
        if tag in LOCALES:
            return tag, False
    return DEFAULT_LOCALE, False
