"""Configuration fails fast and names the variable; the CLI turns that into exit code 2.

Also ``giftwave ledger verify`` on a real SQLite file: clean (exit 0), then tampered (exit 1,
the problem named).
"""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from giftwave.cli import app
from giftwave.config import ConfigError, Settings, load_settings
from giftwave.db.engine import make_engine, migrate
from giftwave.db.urls import parse_database_url
from giftwave.ledger.accounts import open_account
from giftwave.ledger.engine import PostingEngine
from giftwave.ledger.model import AccountFlags, Outcome, Transfer, TransferCode
from giftwave.ledger.stores import open_store


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No GIFTWAVE_* from the outside; run where a default ./giftwave.db would be harmless."""
    for name in list(os.environ):
        if name.startswith("GIFTWAVE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def one_line(output: str) -> str:
    """Rich wraps long lines to the terminal width; compare text, not layout."""
    return re.sub(r"\s+", " ", output)


BAD_VALUES = [
    ("GIFTWAVE_DATABASE_URL", "mysql://x"),
    ("GIFTWAVE_DATABASE_URL", "sqlite://relative.db"),
    ("GIFTWAVE_DATABASE_URL", "sqlite:///:memory:"),
    ("GIFTWAVE_DATABASE_URL", "postgresql://host"),
    ("GIFTWAVE_DATABASE_URL", ""),
    ("GIFTWAVE_BROKER_URL", "kafka://x"),
    ("GIFTWAVE_LEDGER_BATCH_MAX_TRANSFERS", "0"),
    ("GIFTWAVE_LEDGER_BATCH_MAX_TRANSFERS", "abc"),
    ("GIFTWAVE_LEDGER_BATCH_MAX_TRANSFERS", "100001"),
    ("GIFTWAVE_LEDGER_BATCH_MAX_TRANSFERS", "1.5"),
    ("GIFTWAVE_LEDGER_QUEUE_MAX_SUBMISSIONS", "-1"),
    ("GIFTWAVE_LEDGER_BATCH_LINGER_MS", "6"),
    ("GIFTWAVE_LEDGER_BATCH_LINGER_MS", "soon"),
    ("GIFTWAVE_LEDGER_EXPIRY_INTERVAL_S", "0"),
]


@pytest.mark.parametrize(("variable", "value"), BAD_VALUES)
def test_a_bad_value_raises_config_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert f"{variable}:" in message
    # Only the bad variable is named.
    assert message.count("GIFTWAVE_") == 1, message


def test_every_bad_variable_is_named_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIFTWAVE_DATABASE_URL", "mysql://x")
    monkeypatch.setenv("GIFTWAVE_LEDGER_BATCH_MAX_TRANSFERS", "0")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "GIFTWAVE_DATABASE_URL:" in str(caught.value)
    assert "GIFTWAVE_LEDGER_BATCH_MAX_TRANSFERS:" in str(caught.value)


def test_good_values_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIFTWAVE_DATABASE_URL", "postgresql://db.example/giftwave")
    monkeypatch.setenv("GIFTWAVE_LEDGER_BATCH_MAX_TRANSFERS", "100")
    monkeypatch.setenv("GIFTWAVE_ADMIN_TOKEN", "s3cret")
    settings = load_settings()
    assert settings.database_url == "postgresql://db.example/giftwave"
    assert settings.ledger_batch_max_transfers == 100
    assert settings.admin_token is not None
    assert settings.admin_token.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings)


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert settings == Settings()
    assert settings.database_url == "sqlite:///./giftwave.db"
    assert settings.admin_token is None


runner = CliRunner()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("GIFTWAVE_DATABASE_URL", "mysql://x"),
        ("GIFTWAVE_LEDGER_BATCH_MAX_TRANSFERS", "abc"),
    ],
)
@pytest.mark.parametrize("command", [["migrate"], ["ledger", "verify"], ["ledger", "balance", "1"]])
def test_the_cli_exits_2_naming_the_bad_variable(
    tmp_path: Path, variable: str, value: str, command: list[str]
) -> None:
    result = runner.invoke(app, command, env={variable: value})
    assert result.exit_code == 2, result.output
    assert f"{variable}:" in one_line(result.output)
    assert not (tmp_path / "giftwave.db").exists()  # failed before touching any database


def _seed_ledger(url: str) -> None:
    """Migrate a SQLite file and post a few batches into it."""
    db = parse_database_url(url)
    engine = make_engine(db)
    migrate(engine)
    with engine.begin() as conn:
        issued = open_account(conn, "platform:coins_issued", "COIN").id
        viewer = open_account(conn, "viewer:1:coins", "COIN", flags=AccountFlags.NO_OVERDRAFT).id
        spent = open_account(conn, "platform:gifts_spent", "COIN").id
    engine.dispose()

    async def post() -> None:
        async with PostingEngine(open_store(db)) as posting:
            top = Transfer("top", issued, viewer, 100, TransferCode.TOPUP)
            assert await posting.submit([top]) == [Outcome.OK]
            for i in range(3):
                gift = Transfer(f"g{i}", viewer, spent, 10, TransferCode.GIFT)
                assert await posting.submit([gift]) == [Outcome.OK]

    asyncio.run(post())


def test_ledger_verify_clean_then_tampered(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/ledger.db"
    _seed_ledger(url)
    env = {"GIFTWAVE_DATABASE_URL": url}

    result = runner.invoke(app, ["ledger", "verify"], env=env)
    assert result.exit_code == 0, result.output
    assert "clean" in result.output
    assert "3 accounts, 4 transfers, 4 batches" in one_line(result.output)

    engine = make_engine(parse_database_url(url))
    with engine.begin() as conn:
        conn.execute(text("UPDATE transfers SET amount = 11 WHERE id = 'g1'"))
    engine.dispose()
    result = runner.invoke(app, ["ledger", "verify"], env=env)
    assert result.exit_code == 1, result.output
    output = one_line(result.output)
    assert "clean" not in output
    assert "PROBLEM" in output
    assert "batch 3: hash does not match its transfers" in output
    assert "account viewer:1:coins (#2): debits_posted is 30, transfers say 31" in output


def test_ledger_verify_names_a_missing_batch(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/ledger.db"
    _seed_ledger(url)
    engine = make_engine(parse_database_url(url))
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM ledger_batches WHERE seq = 2"))
    engine.dispose()
    result = runner.invoke(app, ["ledger", "verify"], env={"GIFTWAVE_DATABASE_URL": url})
    assert result.exit_code == 1, result.output
    assert "batch 2 is missing" in one_line(result.output)


def test_migrate_then_balance(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/fresh.db"
    env = {"GIFTWAVE_DATABASE_URL": url}
    result = runner.invoke(app, ["migrate"], env=env)
    assert result.exit_code == 0, result.output
    assert "up to date" in result.output
    # Twice is fine: migrating is idempotent.
    assert runner.invoke(app, ["migrate"], env=env).exit_code == 0
    result = runner.invoke(app, ["ledger", "balance", "nobody"], env=env)
    assert result.exit_code == 1
    assert "no account 'nobody'" in one_line(result.output)


def test_subscription_bounds_min_above_max_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIFTWAVE_SUBSCRIPTION_MIN_COINS", "500")
    monkeypatch.setenv("GIFTWAVE_SUBSCRIPTION_MAX_COINS", "400")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "subscription_min_coins (500) is above subscription_max_coins (400)" in str(caught.value)
    monkeypatch.setenv("GIFTWAVE_SUBSCRIPTION_MAX_COINS", "500")
    assert load_settings().subscription_max_coins == 500
