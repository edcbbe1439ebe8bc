"""`giftwave config check`'s rules, as plain functions: unknown variables, unsafe combinations,
masked secrets, the .env file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import SecretStr

from giftwave.config import ConfigError, Settings, load_settings
from giftwave.config_check import (
    effective_settings,
    environment_findings,
    unknown_variables,
    unsafe_combinations,
)

REPO = Path(__file__).resolve().parents[2]
LONG_TOKEN = "t" * 40


def _codes(settings: Settings) -> dict[str, str]:
    return {f.variable: f.level for f in unsafe_combinations(settings)}


def test_a_misspelt_variable_is_an_error_naming_the_closest_setting() -> None:
    [finding] = unknown_variables(["GIFTWAVE_GIFT_DAILY_SPEND_MAX_COIN"])
    assert finding.level == "error"
    assert finding.variable == "GIFTWAVE_GIFT_DAILY_SPEND_MAX_COIN"
    assert "did you mean GIFTWAVE_GIFT_DAILY_SPEND_MAX_COINS?" in finding.message


def test_known_settings_and_the_test_suites_variables_are_not_findings() -> None:
    names = ["GIFTWAVE_DATABASE_URL", "GIFTWAVE_DRAIN_TIMEOUT_S", "GIFTWAVE_ENV_FILE"]
    assert unknown_variables([*names, "GIFTWAVE_TEST_POSTGRES_URL"]) == []


def test_every_variable_the_repository_sets_is_known() -> None:
    """The Makefile, scripts, deploy files and tests set only variables giftwave reads:
    `giftwave serve` refuses any other, so a stale one would stop a server."""
    found: set[str] = set()
    for pattern in ("Makefile", "scripts/*", "deploy/**/*", "tests/**/*.py", "docs/*.md"):
        for path in REPO.glob(pattern):
            # The config check's own tests misspell names on purpose.
            if path.is_file() and not path.name.startswith("test_config_check"):
                text = path.read_text(errors="replace")
                found |= set(re.findall(r"\bGIFTWAVE_[A-Z0-9_]*[A-Z0-9]\b", text))
    assert found, "the scan found nothing: the repository layout changed"
    assert [f.line() for f in unknown_variables(found)] == []


def test_cookies_without_secure_on_https_is_an_error() -> None:
    settings = Settings(public_url="https://gw.example", cookie_secure=False)
    assert _codes(settings)["GIFTWAVE_COOKIE_SECURE"] == "error"
    assert "GIFTWAVE_COOKIE_SECURE" not in _codes(Settings(public_url="https://gw.example"))


def test_the_sandbox_or_plain_http_on_a_public_address_is_an_error() -> None:
    public = _codes(Settings(public_url="http://gw.example"))
    assert public["GIFTWAVE_PAYMENT_PROVIDER"] == "error"  # sandbox: coins for free
    assert public["GIFTWAVE_PUBLIC_URL"] == "error"  # passwords in clear
    for local in ("http://localhost:8000", "http://127.0.0.1:8000", "http://[::1]:8000"):
        codes = _codes(Settings(public_url=local))
        assert "GIFTWAVE_PAYMENT_PROVIDER" not in codes, local
        assert "GIFTWAVE_PUBLIC_URL" not in codes, local


def test_a_production_configuration_has_no_error() -> None:
    settings = Settings(
        public_url="https://gw.example",
        payment_provider="stripe",
        stripe_api_key=SecretStr("sk_live_x"),
        stripe_webhook_secret=SecretStr("whsec_x"),
        admin_token=SecretStr(LONG_TOKEN),
    )
    assert unsafe_combinations(settings) == []


def test_stripe_without_keys_and_weak_choices() -> None:
    codes = _codes(
        Settings(
            payment_provider="stripe",
            admin_token=SecretStr("short"),
            webhook_allow_private_addresses=True,
        )
    )
    assert codes["GIFTWAVE_PAYMENT_PROVIDER"] == "error"
    assert codes["GIFTWAVE_ADMIN_TOKEN"] == "warning"
    assert codes["GIFTWAVE_WEBHOOK_ALLOW_PRIVATE_ADDRESSES"] == "warning"
    assert codes["GIFTWAVE_PUBLIC_URL"] == "warning"  # unset
    assert _codes(Settings())["GIFTWAVE_ADMIN_TOKEN"] == "warning"  # unset: API off


def test_secrets_and_url_passwords_are_masked() -> None:
    settings = Settings(
        database_url="postgresql://gw:db-pass-123@127.0.0.1:5432/gw",
        broker_url="redis://:redis-pass-456@127.0.0.1:6379/0",
        admin_token=SecretStr(LONG_TOKEN),
        stripe_api_key=SecretStr("sk_live_secret789"),
    )
    shown = dict(effective_settings(settings))
    printed = "\n".join(f"{k}={v}" for k, v in shown.items())
    for secret in ("db-pass-123", "redis-pass-456", LONG_TOKEN, "sk_live_secret789"):
        assert secret not in printed
    assert shown["GIFTWAVE_DATABASE_URL"] == "postgresql://gw:********@127.0.0.1:5432/gw"
    assert shown["GIFTWAVE_ADMIN_TOKEN"] == "********"
    assert shown["GIFTWAVE_SANDBOX_WEBHOOK_SECRET"] == "unset"
    assert shown["GIFTWAVE_GIFT_MAX_COUNT"] == "999"


def test_the_env_file_is_read_and_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_file = tmp_path / "giftwave.env"
    env_file.write_text(
        "GIFTWAVE_GIFT_MAX_COUNT=7\nGIFTWAVE_LIVE_TICK_MS=250\nGIFTWAVE_GIFT_MAX_CONT=9\n"
    )
    for name in ("GIFTWAVE_GIFT_MAX_COUNT", "GIFTWAVE_LIVE_TICK_MS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GIFTWAVE_ENV_FILE", str(env_file))
    monkeypatch.setenv("GIFTWAVE_LIVE_TICK_MS", "50")
    settings = load_settings()
    assert settings.gift_max_count == 7
    assert settings.live_tick_ms == 50
    findings = environment_findings({"GIFTWAVE_ENV_FILE": str(env_file)})
    assert [(f.variable, f.level) for f in findings] == [("GIFTWAVE_GIFT_MAX_CONT", "error")]
    assert "GIFTWAVE_GIFT_MAX_COUNT" in findings[0].message


def test_a_missing_env_file_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GIFTWAVE_ENV_FILE", str(tmp_path / "nope.env"))
    with pytest.raises(ConfigError, match="GIFTWAVE_ENV_FILE"):
        load_settings()
