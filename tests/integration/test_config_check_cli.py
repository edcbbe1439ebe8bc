"""`giftwave config check` and `giftwave serve` as an operator runs them, in their own process:
a misspelt money limit is named (with the setting meant) and stops the server; an unsafe
production combination fails the check; secrets never reach the output."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

from serverproc import free_port, run_cli

ADMIN_TOKEN: Final = "a-long-admin-token-that-must-never-be-printed"
STRIPE_KEY: Final = "sk_live_never_printed_either"


def _env(tmp_path: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIFTWAVE_")}
    env["GIFTWAVE_DATABASE_URL"] = f"sqlite:///{tmp_path / 'gw.db'}"
    env["GIFTWAVE_ADMIN_TOKEN"] = ADMIN_TOKEN
    env.update({f"GIFTWAVE_{name.upper()}": value for name, value in settings.items()})
    return env


def test_config_check_names_a_misspelt_limit_and_serve_refuses_it(tmp_path: Path) -> None:
    env = _env(tmp_path, gift_daily_spend_max_coin="500")
    check = run_cli(["config", "check"], env)
    assert check.returncode == 1, check.stdout + check.stderr
    assert (
        "ERROR GIFTWAVE_GIFT_DAILY_SPEND_MAX_COIN: not a giftwave setting (ignored); "
        "did you mean GIFTWAVE_GIFT_DAILY_SPEND_MAX_COINS?"
    ) in check.stderr
    assert "GIFTWAVE_GIFT_DAILY_SPEND_MAX_COINS=1000000" in check.stdout  # what is in force
    assert "GIFTWAVE_ADMIN_TOKEN=********" in check.stdout
    assert ADMIN_TOKEN not in check.stdout + check.stderr

    serve = run_cli(["serve", "--port", str(free_port())], env)
    assert serve.returncode == 2, serve.stdout + serve.stderr
    assert "GIFTWAVE_GIFT_DAILY_SPEND_MAX_COIN" in serve.stderr
    assert "refusing to start" in serve.stderr


def test_config_check_fails_an_unsafe_public_setup_and_passes_a_sound_one(
    tmp_path: Path,
) -> None:
    unsafe = _env(tmp_path, public_url="https://gw.example", cookie_secure="false")
    check = run_cli(["config", "check"], unsafe)
    assert check.returncode == 1
    assert "ERROR GIFTWAVE_COOKIE_SECURE" in check.stderr
    assert "ERROR GIFTWAVE_PAYMENT_PROVIDER: sandbox on a public address" in check.stderr

    sound = _env(
        tmp_path,
        public_url="https://gw.example",
        payment_provider="stripe",
        stripe_api_key=STRIPE_KEY,
        stripe_webhook_secret="whsec_x",
    )
    check = run_cli(["config", "check"], sound)
    assert check.returncode == 0, check.stderr
    assert "config check: 0 error(s), 0 warning(s)" in check.stderr
    assert STRIPE_KEY not in check.stdout + check.stderr


def test_a_bad_value_exits_2_naming_it(tmp_path: Path) -> None:
    check = run_cli(["config", "check"], _env(tmp_path, drain_timeout_s="0"))
    assert check.returncode == 2
    assert "GIFTWAVE_DRAIN_TIMEOUT_S" in check.stderr


def test_push_keys_make_a_vapid_key_that_config_check_masks(tmp_path: Path) -> None:
    made = run_cli(["push", "keys"], _env(tmp_path))
    assert made.returncode == 0, made.stdout + made.stderr
    line = next(x for x in made.stdout.splitlines() if x.startswith("GIFTWAVE_VAPID_PRIVATE_KEY="))
    private = line.split("=", 1)[1]
    assert len(private) == 43  # 32 bytes in base64url
    check = run_cli(["config", "check"], _env(tmp_path, vapid_private_key=private))
    assert "GIFTWAVE_VAPID_PRIVATE_KEY=********" in check.stdout
    assert private not in check.stdout + check.stderr
    bad = run_cli(["config", "check"], _env(tmp_path, vapid_private_key="short"))
    assert bad.returncode == 2
    assert "GIFTWAVE_VAPID_PRIVATE_KEY" in bad.stderr
