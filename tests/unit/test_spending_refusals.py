"""The two refusals every way of spending coins shares (coins, gifts, subscriptions, gifted
subscriptions): under the country's age, and a refunded top-up's debt still owed. Each route
names what it refused; the code, the words around it and the problem's extension are one."""

from __future__ import annotations

from datetime import date

import pytest

from giftwave.economy.gifting import refuse_in_debt
from giftwave.errors import Code, Forbidden
from giftwave.identity.users import AgeRule, Role, User, UserStatus

RULE = AgeRule(18, {"KR": 19})
TODAY = date(2026, 6, 1)


def _born(birth_date: date, country: str) -> User:
    return User(
        id=1,
        handle="u1",
        email=None,
        role=Role.VIEWER,
        birth_date=birth_date,
        country=country,
        status=UserStatus.ACTIVE,
        age_verified=False,
        external_ref=None,
    )


@pytest.mark.parametrize("doing", ["buying coins", "sending gifts", "subscribing"])
def test_under_age_names_what_was_refused_and_the_countrys_age(doing: str) -> None:
    with pytest.raises(Forbidden) as refused:
        RULE.require(_born(date(2007, 6, 2), "KR"), TODAY, doing)
    assert refused.value.code is Code.UNDER_AGE
    assert refused.value.detail == f"{doing} needs age 19+"
    assert refused.value.extra == {"min_age": 19}


def test_of_age_on_the_birthday_is_allowed() -> None:
    RULE.require(_born(date(2008, 6, 1), "US"), TODAY, "sending gifts")
    RULE.require(_born(date(2007, 6, 1), "KR"), TODAY, "sending gifts")


def test_a_debt_is_refused_with_the_coins_owed() -> None:
    with pytest.raises(Forbidden) as refused:
        refuse_in_debt(1_250)
    assert refused.value.code is Code.ACCOUNT_IN_DEBT
    assert refused.value.detail == (
        "a refunded top-up left a debt of 1,250 coins; buy coins to settle it"
    )
    assert refused.value.extra == {"debt_coins": 1_250}
    refuse_in_debt(0)  # nothing owed: nothing refused
