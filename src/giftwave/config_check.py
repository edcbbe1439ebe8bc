"""``giftwave config check``: what this process would run with, and what is wrong with it.

Three kinds of finding, each naming its variable:

- an unknown ``GIFTWAVE_*`` variable (error): a misspelt money limit silently ignored would
  leave the default in force; the closest known name is suggested;
- an unsafe combination for a public server (error): session cookies without ``Secure``
  on https, the sandboxes (free coins, payouts that pay nothing) or plain http on a public
  address, Stripe (Checkout or Connect) without keys or with Checkout's secret reused;
- a choice worth a second look (warning): no admin token, no public URL, private webhook
  addresses allowed.

``giftwave serve`` refuses to start on an unknown variable and logs the others; ``config
check`` exits 1 on any error, so a deploy pipeline can run it first.
"""

from __future__ import annotations

import difflib
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal
from urllib.parse import urlsplit, urlunsplit

from dotenv import dotenv_values
from pydantic import SecretStr

from giftwave.config import ENV_PREFIX, Settings, env_file_path

MASK: Final = "********"
# Not settings, yet set where giftwave runs: the .env file's own location, the image tag the
# compose file (deploy/) takes from the operator's shell, and the test suite's variables (its
# PostgreSQL and Redis, where screenshots go).
OTHER_VARIABLES: Final = frozenset(
    {"GIFTWAVE_ENV_FILE", "GIFTWAVE_IMAGE_TAG", "GIFTWAVE_SCREENSHOT_DIR"}
)
OTHER_PREFIXES: Final = ("GIFTWAVE_TEST_",)
# Admin tokens shorter than this are guessable by a patient attacker (32 characters of
# token_urlsafe is 192 bits).
ADMIN_TOKEN_MIN_CHARS: Final = 32

Level = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Finding:
    level: Level
    variable: str
    message: str

    def line(self) -> str:
        return f"{self.level.upper()} {self.variable}: {self.message}"


def known_variables() -> frozenset[str]:
    return frozenset(ENV_PREFIX + name.upper() for name in Settings.model_fields)


def variable_names(environ: Mapping[str, str], env_file: Path | None) -> set[str]:
    """Every ``GIFTWAVE_*`` name set in the environment or in the .env file giftwave reads."""
    names = {name for name in environ if name.upper().startswith(ENV_PREFIX)}
    if env_file is not None:
        names |= {n for n in dotenv_values(env_file) if n.upper().startswith(ENV_PREFIX)}
    return names


def unknown_variables(names: Iterable[str]) -> list[Finding]:
    """An error per name giftwave does not read, with the closest one it does."""
    known = known_variables()
    found = []
    for name in sorted(names):
        upper = name.upper()
        if upper in known or upper in OTHER_VARIABLES or upper.startswith(OTHER_PREFIXES):
            continue
        close = difflib.get_close_matches(upper, known, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]}?" if close else ""
        found.append(Finding("error", name, f"not a giftwave setting (ignored){hint}"))
    return found


def environment_findings(environ: Mapping[str, str]) -> list[Finding]:
    """Unknown variables in the environment and the .env file (``serve`` refuses them)."""
    return unknown_variables(variable_names(environ, env_file_path(environ)))


def _is_local(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def unsafe_combinations(settings: Settings) -> list[Finding]:
    """What is dangerous, or worth a look, on a server the public reaches."""
    found: list[Finding] = []
    url = settings.public_url
    parts = urlsplit(url) if url is not None else None
    public = parts is not None and not _is_local(parts.hostname or "")
    if parts is not None and parts.scheme == "https" and not settings.cookie_secure:
        found.append(
            Finding(
                "error",
                "GIFTWAVE_COOKIE_SECURE",
                "false with an https public URL: a session cookie would also be sent over "
                "plain http, where anyone on the path reads it",
            )
        )
    if public and parts is not None and parts.scheme != "https":
        found.append(
            Finding(
                "error",
                "GIFTWAVE_PUBLIC_URL",
                "a public address without https: passwords and sessions would cross the "
                "network in clear",
            )
        )
    if public and settings.payment_provider == "sandbox":
        found.append(
            Finding(
                "error",
                "GIFTWAVE_PAYMENT_PROVIDER",
                "sandbox on a public address: anyone could buy coins without paying",
            )
        )
    if settings.payment_provider == "stripe" and (
        settings.stripe_api_key is None or settings.stripe_webhook_secret is None
    ):
        found.append(
            Finding(
                "error",
                "GIFTWAVE_PAYMENT_PROVIDER",
                "stripe needs GIFTWAVE_STRIPE_API_KEY and GIFTWAVE_STRIPE_WEBHOOK_SECRET",
            )
        )
    found.extend(_payout_findings(settings, public))
    token = settings.admin_token
    if token is None:
        found.append(
            Finding(
                "warning",
                "GIFTWAVE_ADMIN_TOKEN",
                "unset: the operator's ledger API is switched off",
            )
        )
    elif len(token.get_secret_value()) < ADMIN_TOKEN_MIN_CHARS:
        found.append(
            Finding(
                "warning",
                "GIFTWAVE_ADMIN_TOKEN",
                f"shorter than {ADMIN_TOKEN_MIN_CHARS} characters: guessable",
            )
        )
    if url is None:
        found.append(
            Finding(
                "warning",
                "GIFTWAVE_PUBLIC_URL",
                "unset: links are built from the request's Host, and only loopback names "
                "are answered (GIFTWAVE_ALLOWED_HOSTS)",
            )
        )
    if settings.webhook_allow_private_addresses:
        found.append(
            Finding(
                "warning",
                "GIFTWAVE_WEBHOOK_ALLOW_PRIVATE_ADDRESSES",
                "true: a creator's webhook may call addresses inside your network",
            )
        )
    return found


def _payout_findings(settings: Settings, public: bool) -> list[Finding]:
    found: list[Finding] = []
    if public and settings.payout_provider == "sandbox":
        found.append(
            Finding(
                "error",
                "GIFTWAVE_PAYOUT_PROVIDER",
                "sandbox on a public address: creators would verify themselves and payouts "
                "would be marked paid with no money sent",
            )
        )
    if settings.payout_provider != "stripe":
        return found
    if settings.stripe_api_key is None or settings.stripe_connect_webhook_secret is None:
        found.append(
            Finding(
                "error",
                "GIFTWAVE_PAYOUT_PROVIDER",
                "stripe needs GIFTWAVE_STRIPE_API_KEY and GIFTWAVE_STRIPE_CONNECT_WEBHOOK_SECRET",
            )
        )
    checkout = settings.stripe_webhook_secret
    for name in ("stripe_connect_webhook_secret", "stripe_connect_transfers_webhook_secret"):
        secret = getattr(settings, name)
        if secret is not None and checkout is not None and secret == checkout:
            found.append(
                Finding(
                    "error",
                    ENV_PREFIX + name.upper(),
                    "the same as GIFTWAVE_STRIPE_WEBHOOK_SECRET: each Stripe endpoint has its "
                    "own signing secret, so one of them is wrong",
                )
            )
    if settings.stripe_connect_transfers_webhook_secret is None:
        found.append(
            Finding(
                "warning",
                "GIFTWAVE_STRIPE_CONNECT_TRANSFERS_WEBHOOK_SECRET",
                "unset: transfer.reversed is not heard, so a transfer reversed in Stripe's "
                "Dashboard leaves its payout paid",
            )
        )
    return found


def _mask_url(value: str) -> str:
    """A URL with its password, if any, masked (database and Redis URLs carry them)."""
    parts = urlsplit(value)
    if parts.password is None:
        return value
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{host}"))


def effective_settings(settings: Settings) -> list[tuple[str, str]]:
    """Each setting's variable and value as this process would use it, secrets masked."""
    rows = []
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            shown = MASK
        elif value is None:
            shown = "unset"
        elif name.endswith("_url") and isinstance(value, str):
            shown = _mask_url(value)
        else:
            shown = str(value)
        rows.append((ENV_PREFIX + name.upper(), shown))
    return rows
