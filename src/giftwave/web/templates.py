"""The Jinja2 environment: templates shipped in the package, autoescaped."""

from __future__ import annotations

from functools import cache

from jinja2 import Environment, PackageLoader, select_autoescape


@cache
def environment() -> Environment:
    return Environment(
        loader=PackageLoader("giftwave.web", "templates"),
        autoescape=select_autoescape(["html"]),
        auto_reload=False,
    )


def render(name: str, **context: object) -> str:
    return environment().get_template(name).render(**context)
