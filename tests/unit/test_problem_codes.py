"""Every problem ``code`` the code base can answer is a member of ``Code``, the OpenAPI
document lists them all, and no wire value changes (clients switch on them)."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any, Final

import pytest

import giftwave
from giftwave.api.app import create_app
from giftwave.config import Settings
from giftwave.errors import Code
from giftwave.ledger.model import Outcome

SOURCE: Final = Path(giftwave.__file__).parent
# The stable codes, one a line: a code may be added here, never renamed or removed.
STABLE: Final = Path(__file__).with_name("problem_codes.txt")
# Whatever takes a problem code, and where it takes it: position, or the ``code`` keyword.
CODE_ARGUMENT: Final = {
    **dict.fromkeys(
        (
            "DomainError",
            "Invalid",
            "Unauthorized",
            "Forbidden",
            "NotFound",
            "Conflict",
            "PaymentRequired",
            "RateLimited",
            "Unavailable",
            "PaymentError",
            "WebhookRejected",
            "ProviderUnavailable",
            "ProviderTimeout",
        ),
        0,
    ),
    "Problem": 1,
    "problem_response": 1,
    "_error": 1,  # a socket command's refusal (api/live.py)
    "UserLimit": None,  # keyword only
}


def _code_arguments() -> list[tuple[str, ast.expr]]:
    found = []
    for path in sorted(SOURCE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if name not in CODE_ARGUMENT:
                continue
            where = f"{path.relative_to(SOURCE)}:{node.lineno}"
            position = CODE_ARGUMENT[name]
            if position is not None and len(node.args) > position:
                found.append((where, node.args[position]))
            found += [(where, k.value) for k in node.keywords if k.arg == "code"]
    return found


def test_every_code_raised_is_a_member_of_the_enum() -> None:
    arguments = _code_arguments()
    assert len(arguments) > 250  # the scan sees the raises (it found none: it is broken)
    literal = [w for w, arg in arguments if isinstance(arg, ast.Constant)]
    assert not literal, f"a code as a string, not a Code member: {literal}"
    members = [
        (w, arg.attr)
        for w, arg in arguments
        if isinstance(arg, ast.Attribute) and isinstance(arg.value, ast.Name)
        if arg.value.id == "Code"
    ]
    assert len(members) > 250
    assert not [(w, m) for w, m in members if m not in Code.__members__]
    # The admin's coin grant answers with its transfer's outcome, whichever failed.
    assert {o.value for o in Outcome if not o.succeeded} <= set(Code)


def test_wire_values_are_unchanged() -> None:
    stable = STABLE.read_text().split()
    assert [c.value for c in Code] == stable  # a new code: add its line (in order)
    for code in Code:
        assert code.value == code.name.lower()
        assert str(code) == f"{code}" == code.value  # what problem+json and sockets send


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    return create_app(Settings(database_url="sqlite:///unused-by-openapi.db")).openapi()


def test_the_openapi_document_lists_every_code(openapi: dict[str, Any]) -> None:
    schemas = openapi["components"]["schemas"]
    assert schemas["ProblemCode"]["enum"] == [c.value for c in Code]
    code = schemas["Problem"]["properties"]["code"]
    assert code["$ref"] == "#/components/schemas/ProblemCode"
    gift = openapi["paths"]["/v1/streams/{stream_id}/gifts"]["post"]["responses"]
    for status in ("402", "403", "409", "422", "429", "503"):
        content = gift[status]["content"]["application/problem+json"]
        assert content["schema"] == {"$ref": "#/components/schemas/Problem"}
