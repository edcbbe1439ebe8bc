"""The pages' languages: every string the pages show is in each catalog, translated, with the
same placeholders; the language is chosen the way a browser expects; Arabic is right-to-left."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from starlette.requests import Request

from giftwave.web.i18n import LOCALES, catalog_files, client_messages, negotiate, text_direction
from giftwave.web.templates import render

SRC = Path(__file__).resolve().parents[2] / "src" / "giftwave"
METHOD_MAP = [
    ("web/**.py", "python"),
    ("api/*pages.py", "python"),
    ("web/templates/**.html", "jinja2"),
]
OPTIONS = {"web/templates/**.html": {"extensions": "jinja2.ext.i18n"}}
PLACEHOLDER = re.compile(r"%\(\w+\)s|\{\w+\}")


def _source_messages() -> set[str]:
    found = set()
    for _, _, message, _, _ in extract_from_dir(SRC, METHOD_MAP, OPTIONS):
        found.add(message[0] if isinstance(message, tuple) else message)
    return found


@pytest.mark.parametrize("locale", [lc for lc in LOCALES if lc != "en"])
def test_every_string_of_the_pages_is_translated(locale: str) -> None:
    translated: dict[str, tuple[str, ...]] = {}
    for path in catalog_files(locale):  # messages.po and each part's (studio.po, ...)
        with path.open("rb") as po:
            catalog = read_po(po, locale=locale)
        for m in catalog:
            if not m.id:
                continue
            key = m.id[0] if isinstance(m.id, tuple) else m.id
            strings = m.string if isinstance(m.string, tuple) else (m.string,)
            assert "fuzzy" not in m.flags, f"{locale}: fuzzy translation of {key!r}"
            assert all(strings), f"{locale}: {key!r} is not translated in {path.name}"
            for s in strings:
                # Arabic's singular forms may say "one" in words instead of the number.
                assert set(PLACEHOLDER.findall(s)) <= set(PLACEHOLDER.findall(key)), (
                    locale,
                    key,
                    s,
                )
            # A string two parts both show (a "Coins" heading) reads the same in each.
            assert translated.setdefault(key, strings) == strings, (locale, path.name, key)
    sources = _source_messages()
    assert {"Top gifters", "{sender} sent {gift}", "Log in"} <= sources  # extraction works
    missing = sources - translated.keys()
    assert not missing, f"{locale}: run `make messages` and translate {sorted(missing)}"


def test_client_messages_are_translated_for_the_scripts() -> None:
    es = client_messages("es")
    assert es["Not enough coins"] == "No tienes suficientes monedas"
    assert client_messages("en")["Not enough coins"] == "Not enough coins"
    assert "{sender}" in client_messages("ar")["{sender} sent {gift}"]


def _request(query: str = "", cookie: str = "", accept: str = "") -> Request:
    headers = []
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    if accept:
        headers.append((b"accept-language", accept.encode()))
    return Request(
        {
            "type": "http",
            "method": "GET",
            "path": "/",
            "query_string": query.encode(),
            "headers": headers,
        }
    )


@pytest.mark.parametrize(
    ("query", "cookie", "accept", "expected"),
    [
        ("", "", "", ("en", False)),
        ("lang=ar", "gw_lang=es", "es", ("ar", True)),  # asked now: wins, remembered
        ("lang=xx", "gw_lang=es", "ar", ("es", False)),  # unknown ?lang= is ignored
        ("", "", "fr-FR,es;q=0.8,en;q=0.5", ("es", False)),  # the first one we speak
        ("", "", "en;q=0.2,ar-SA;q=0.9", ("ar", False)),  # by q, not by order
        ("", "", "es;q=0,ar;q=bad,*", ("en", False)),  # refused, malformed, wildcard
    ],
)
def test_the_language_is_chosen_like_a_browser_expects(
    query: str, cookie: str, accept: str, expected: tuple[str, bool]
) -> None:
    assert negotiate(_request(query, cookie, accept)) == expected


def test_arabic_pages_are_right_to_left_and_plurals_follow_the_language() -> None:
    assert text_direction("ar") == "rtl"
    assert text_direction("es") == "ltr"
    html = render(
        "not_found.html", "ar", who=_Anon(), path="/x", next_url="/x", boot="{}", what="stream"
    )
    assert '<html lang="ar" dir="rtl">' in html
    assert "لا يوجد بث كهذا" in html


class _Anon:
    user = None
    is_creator = False
    is_admin = False
