"""The Jinja2 environments: templates shipped in the package, autoescaped, one environment per
language with its catalog installed (``{{ _("…") }}``, ``{% trans %}``)."""

from __future__ import annotations

from functools import cache

from babel.dates import format_date, format_skeleton
from babel.numbers import format_decimal
from jinja2 import Environment, PackageLoader, select_autoescape

from giftwave.money import format_money
from giftwave.web.i18n import DEFAULT_LOCALE, LANGUAGE_NAMES, LOCALES, text_direction, translations
from giftwave.web.json_in_html import json_for_html


@cache
def environment(locale: str = DEFAULT_LOCALE) -> Environment:
    env = Environment(
        loader=PackageLoader("giftwave.web", "templates"),
        autoescape=select_autoescape(["html"]),
        auto_reload=False,
        extensions=["jinja2.ext.i18n"],
    )
    env.install_gettext_translations(translations(locale), newstyle=True)  # type: ignore[attr-defined]
    env.globals.update(
        locale=locale,
        dir=text_direction(locale),
        locales=LOCALES,
        language_names=LANGUAGE_NAMES,
    )
    # Every JSON in a page goes through one encoder (web/json_in_html.py), Jinja's own too.
    env.filters["tojson"] = json_for_html
    env.filters["number"] = lambda n: format_decimal(n, locale=locale)
    env.filters["date"] = lambda d: format_date(d, format="medium", locale=locale)
    env.filters["day_month"] = lambda d: format_skeleton("MMMd", d, locale=locale)
    # An amount in its currency's minor unit (money.py): cents for the default USD.
    env.filters["cents"] = lambda n, currency="USD": format_money(int(n), currency, locale)
    return env


def render(name: str, locale: str = DEFAULT_LOCALE, **context: object) -> str:
    return environment(locale).get_template(name).render(**context)
