"""What the pages' scripts say that the server must translate for them: the API's refusals by
their stable ``code``, and the strings whose form follows a number.

A refusal (problem+json, or a socket's error frame) carries a ``code`` and an English
``detail``; a page shows ``problem_messages(locale)[code]`` (in its boot data), and the detail
only for a code not listed here. A count is said with the catalogue's plural forms, handed to
the script by CLDR category (``zero one two few many other``, what ``Intl.PluralRules``
answers), so "1 coin" and Arabic's six forms come out right in the page's language.
"""

from __future__ import annotations

from functools import cache
from typing import Final

from babel import Locale

from giftwave.web.i18n import N_, translations


def ngettext(singular: str, plural: str) -> tuple[str, str]:
    """Marks a plural pair for extraction (the name is the one ``pybabel`` looks for)."""
    return singular, plural


# Every code a viewer's pages (room, embed, shop, sign-up, log-in) can meet. Placeholders are
# the problem's own fields (``{min_coins}``), filled in by the script when the answer has them.
PROBLEM_MESSAGES: Final = {
    "account_blocked": N_("This account is blocked"),
    "account_frozen": N_("This account is frozen: contact support"),
    "account_in_debt": N_("A refunded purchase left a coin debt: buy coins to settle it"),
    "already_registered": N_("That handle or e-mail is already registered"),
    "busy": N_("The server is busy: try again in a moment"),
    "cannot_follow_self": N_("You cannot follow yourself"),
    "cannot_gift_self": N_("You cannot send gifts to yourself"),
    "chat_mode_needs_club": N_("That chat mode is for fan club members: name your fan club first"),
    "checkout_closed": N_("This checkout is closed"),
    "checkout_not_found": N_("This checkout does not exist"),
    "creator_too_young": N_("You can become a creator from the age of {min_age}"),
    "creator_under_age": N_("This creator cannot receive gifts"),
    "creator_unavailable": N_("This creator cannot receive gifts"),
    "csrf_failed": N_("Your session has expired: reload the page"),
    "daily_spend_limit": N_("You reached today's gifting limit"),
    "self_excluded": N_("You are taking a break from spending until {until}"),
    "self_exclusion_cannot_shorten": N_("A break cannot be shortened or undone"),
    "spending_limit_raise_pending": N_(
        "A raise of this limit is already waiting out its cooling-off period"
    ),
    "spending_limit_reached": N_(
        "You reached your own spending limit of {limit_coins} coins: it resets at {resets_at}"
    ),
    "young_adult_limit": N_("At your age the monthly limit is at most {max_coins} coins"),
    "gift_not_found": N_("This gift is not available"),
    "gift_not_on_sale": N_("This gift is not on sale now"),
    "gift_rate_limited": N_("Slow down a little"),
    "gift_refused": N_("The gift could not be sent"),
    "idempotency_key_reused": N_("This request was already used for something else"),
    "insufficient_coins": N_("Not enough coins"),
    "invalid_birth_date": N_("Enter your real date of birth"),
    "invalid_coin_amount": N_("Choose between {min_coins} and {max_coins} coins"),
    "invalid_count": N_("That number of gifts cannot be sent"),
    "invalid_country": N_("Choose your country from the list"),
    "invalid_credentials": N_("Wrong handle, e-mail or password"),
    "invalid_currency": N_("That currency is not available"),
    "invalid_email": N_("That is not an e-mail address"),
    "invalid_handle": N_("A handle is 3 to 24 of a-z, 0-9, _ and ."),
    "invalid_club_level": N_("Choose a level the club has"),
    "invalid_club_name": N_("A club name is 2 to 24 characters, without control characters"),
    "invalid_request": N_("Some of what you entered is not valid"),
    "invalid_self_exclusion": N_("Choose a break from one day up to five years"),
    "invalid_spending_limit": N_("A limit is a whole number of coins above zero"),
    "ledger_busy": N_("The server is busy: try again in a moment"),
    "login_required": N_("Log in first"),
    "invalid_message": N_("A message is 1 to 200 characters, without control characters"),
    "members_only_chat": N_("Only fan club members can chat here: join the club to chat"),
    "not_enough_gift_recipients": N_(
        "Only {eligible} viewers here can receive a gifted subscription now"
    ),
    "muted": N_("You are muted"),
    "no_packages": N_("Coins are not sold in this currency"),
    "order_not_found": N_("This purchase does not exist"),
    "order_not_open": N_("This purchase is no longer waiting for payment"),
    "package_not_found": N_("This coin package is not available"),
    "package_or_coins": N_("Choose a package or an amount"),
    "paid_message_below_tier": N_("A highlighted message needs a dearer gift"),
    "price_not_chargeable": N_("This price cannot be charged: choose another amount"),
    "provider_unavailable": N_("The payment provider cannot be reached: try again later"),
    "rate_limited": N_("Slow down a little"),
    "sandbox_busy": N_("The payment provider is busy: try again later"),
    "stream_not_found": N_("This stream does not exist"),
    "stream_not_live": N_("This stream has ended"),
    "subscribers_only_chat": N_("Only subscribers can chat here: subscribe to chat"),
    "subscription_price_out_of_bounds": N_("That price is outside the allowed range"),
    "too_many_attempts": N_("Too many attempts: wait a little and try again"),
    "too_many_tickets": N_("Too many connections: wait a little and try again"),
    "unauthorized": N_("Log in first"),
    "under_age": N_("Gifts and coins are only for people aged {min_age} and over"),
    "user_required": N_("Log in first"),
}

# Other strings the spending scripts show (live.js, spend.js, shop.js, auth.js); placeholders
# ``{name}``, filled in by the script.
SCRIPT_MESSAGES: Final = (
    N_("Send {gift}?"),
    N_("{gift} x{count}"),
    N_("about {money}"),
    N_("Price: {price}"),
    N_("Cancelled"),
    N_("Purchase cancelled"),
    N_("The payment was not completed"),
    N_("Continue payment"),
    N_("Cancel purchase"),
    N_(
        "Your account is ready. Sending gifts and buying coins are only for people aged "
        "{min_age} and over; until then you can watch, chat and like."
    ),
)

# Counts the scripts say; ``{n}`` is the number, written in the page's language.
PLURAL_MESSAGES: Final = (
    ngettext("{n} coin", "{n} coins"),
    ngettext("{n} coin added", "{n} coins added"),
    # Subscriptions: the badge's title, the room's announcement, the buyer's receipt.
    ngettext("Subscriber for {n} month", "Subscriber for {n} months"),
    ngettext("{handle} gifted {n} subscription!", "{handle} gifted {n} subscriptions!"),
    ngettext("You gifted {n} subscription", "You gifted {n} subscriptions"),
)

# Any integer of each category; the catalogue's form for it is the category's form.
_SAMPLES_MAX: Final = 1000


@cache
def problem_messages(locale: str) -> dict[str, str]:
    t = translations(locale)
    return {code: t.gettext(message) for code, message in PROBLEM_MESSAGES.items()}


@cache
def plural_messages(locale: str) -> dict[str, dict[str, str]]:
    """Each plural pair as ``{category: text}`` for ``locale``, keyed by its singular."""
    rule = Locale.parse(locale).plural_form
    samples: dict[str, int] = {}
    for n in range(_SAMPLES_MAX):
        samples.setdefault(rule(n), n)
    t = translations(locale)
    return {
        singular: {tag: t.ngettext(singular, plural, n) for tag, n in samples.items()}
        for singular, plural in PLURAL_MESSAGES
    }
