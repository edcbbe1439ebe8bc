"""mypy --strict catches a misspelt event field where an event is built or read: room news,
viewer events and webhook bodies are typed values, not dicts (issue 21)."""

from __future__ import annotations

from pathlib import Path

import pytest
from mypy import api as mypy_api

import giftwave

SRC = Path(giftwave.__file__).resolve().parents[1]  # the giftwave under test, not another copy

GOOD = """
from giftwave.live.events import GiftCommitted, LikesShown
from giftwave.webhooks.events import PingData

news = GiftCommitted(
    send_id="s1", sender_id=1, sender="ana", gift_id="rose", count=1, coins=1, diamonds=1,
    comboable=True, at_us=0,
)
coins: int = news.coins
shown = LikesShown(count=3, total=7)
data = PingData(endpoint_id=1, message="hi")
"""

MISTAKES = {
    # a field misspelt where the event is built
    "news = GiftCommitted(": ("at_us=0", "at_uss=0", 'Unexpected keyword argument "at_uss"'),
    # a field misspelt where it is read
    "coins: int = news.coins": ("news.coins", "news.coin", 'has no attribute "coin"'),
    # a field of the wrong type
    "shown = LikesShown(": ("total=7", 'total="7"', 'incompatible type "str"'),
    # a webhook body's field misspelt
    "data = PingData(": ("message=", "mesage=", 'Unexpected keyword argument "mesage"'),
}


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One mypy cache for the module: the second run reads what the first analysed."""
    return tmp_path_factory.mktemp("mypy-cache")


def _check(cache_dir: Path, program: str) -> tuple[int, str]:
    config = cache_dir / "mypy.ini"
    config.write_text(f"[mypy]\nstrict = True\nmypy_path = {SRC}\n")
    out, err, status = mypy_api.run(
        ["--config-file", str(config), "--cache-dir", str(cache_dir), "-c", program]
    )
    return status, out + err


def test_the_right_fields_type_check_clean(cache_dir: Path) -> None:
    status, report = _check(cache_dir, GOOD)
    assert status == 0, report


def test_a_misspelt_or_mistyped_field_is_an_error(cache_dir: Path) -> None:
    program = GOOD
    for line, (right, wrong, _) in MISTAKES.items():
        at = program.index(right, program.index(line))
        program = program[:at] + wrong + program[at + len(right) :]
    status, report = _check(cache_dir, program)
    assert status == 1, report
    for _, _, message in MISTAKES.values():
        assert message in report, report
    assert report.count("error:") == len(MISTAKES), report
