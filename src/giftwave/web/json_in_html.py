"""JSON written into an HTML page (the boot data, a template's messages): one encoder for all.

Inside ``<script type="application/json">`` the HTML parser, not JSON, decides where the
element ends: ``</script>`` closes it, and ``<!--<script>`` puts the parser in a state where
the real ``</script>`` no longer does, so the rest of the page becomes script text. Creator
data (a stream title, a playback URL, a clip title) can hold either. Escaping ``<``, ``>`` and
``&`` as ``\\u003c``… leaves no markup in the element at all (JSON.parse reads the same
string); ``'`` too, so the output is also safe inside a single-quoted attribute; U+2028 and
U+2029, which end a line in older JavaScript parsers, for any script that evaluates it.
"""

from __future__ import annotations

from typing import Any, Final

import orjson
from markupsafe import Markup

_ESCAPES: Final = {
    ord("<"): "\\u003c",
    ord(">"): "\\u003e",
    ord("&"): "\\u0026",
    ord("'"): "\\u0027",
    0x2028: "\\u2028",
    0x2029: "\\u2029",
}


def json_for_html(value: Any) -> Markup:
    """``value`` as JSON that is inert anywhere in an HTML page (the ``tojson`` filter too)."""
    return Markup(orjson.dumps(value).decode().translate(_ESCAPES))
