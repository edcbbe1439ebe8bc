"""The one encoder for JSON inside HTML (web/json_in_html.py): no markup survives it, the
value reads back the same, and Jinja's ``tojson`` is this encoder."""

from __future__ import annotations

import json

from giftwave.web.json_in_html import json_for_html
from giftwave.web.templates import environment

NASTY = {
    "title": "<!--<script>x</script>",
    "url": "https://a.example/?a=1&b='2'",
    "ls": "a\u2028b\u2029c",
}


def test_no_markup_and_no_line_terminators_survive() -> None:
    out = str(json_for_html(NASTY))
    for forbidden in ("<", ">", "&", "'", "\u2028", "\u2029"):
        assert forbidden not in out
    assert json.loads(out) == NASTY


def test_the_templates_tojson_is_the_same_encoder() -> None:
    rendered = environment("en").from_string("{{ v | tojson }}").render(v=NASTY)
    assert rendered == str(json_for_html(NASTY))
