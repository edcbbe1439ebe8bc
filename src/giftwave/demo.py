"""``giftwave demo``: a seeded demo ledger on SQLite, served, with honest directions."""

from __future__ import annotations

import asyncio
import json
import secrets

from pydantic import SecretStr
from rich.console import Console

from giftwave.config import Settings
from giftwave.db.engine import make_engine, migrate
from giftwave.db.urls import Backend, parse_database_url
from giftwave.ledger.accounts import open_account
from giftwave.ledger.engine import PostingEngine
from giftwave.ledger.model import AccountFlags, Transfer, TransferCode
from giftwave.ledger.stores import open_store
from giftwave.tuning import tune_runtime

DEMO_VIEWERS = ("ana", "bo", "chen", "dara", "eli")
DEMO_GIFTS = (("ana", 1, 57), ("bo", 5, 3), ("chen", 100, 1), ("dara", 1, 12), ("eli", 1000, 1))


def seed_demo(settings: Settings) -> dict[str, int]:
    """Open the demo accounts and post a believable first evening; idempotent on re-runs."""
    db = parse_database_url(settings.database_url)
    engine = make_engine(db)
    migrate(engine)
    no_od = AccountFlags.NO_OVERDRAFT
    with engine.begin() as conn:
        ids = {
            "coins_issued": open_account(conn, "platform:coins_issued", "COIN").id,
            "gifts_spent": open_account(conn, "platform:gifts_spent", "COIN").id,
            "diamonds_issued": open_account(conn, "platform:diamonds_issued", "DIAMOND").id,
            "creator": open_account(
                conn, "creator:luna:diamonds", "DIAMOND", flags=no_od, owner="luna"
            ).id,
        }
        for name in DEMO_VIEWERS:
            ids[name] = open_account(
                conn, f"viewer:{name}:coins", "COIN", flags=no_od, owner=name
            ).id
    engine.dispose()

    async def post() -> None:
        async with PostingEngine(open_store(db)) as posting:
            await posting.submit(
                [
                    Transfer(
                        f"demo:topup:{n}", ids["coins_issued"], ids[n], 7000, TransferCode.TOPUP
                    )
                    for n in DEMO_VIEWERS
                ]
            )
            for viewer, price, count in DEMO_GIFTS:
                for i in range(count):
                    key = f"demo:gift:{viewer}:{price}:{i}"
                    await posting.submit(
                        [
                            Transfer(
                                key + ":c",
                                ids[viewer],
                                ids["gifts_spent"],
                                price,
                                TransferCode.GIFT,
                                True,
                            ),
                            Transfer(
                                key + ":d",
                                ids["diamonds_issued"],
                                ids["creator"],
                                price,
                                TransferCode.GIFT,
                            ),
                        ]
                    )

    asyncio.run(post())
    return ids


def with_admin_token(settings: Settings) -> Settings:
    """The demo's settings: the operator's admin token, or a fresh random one."""
    if settings.admin_token is not None:
        return settings
    # model_copy does not validate: the value must already be a SecretStr.
    return settings.model_copy(update={"admin_token": SecretStr(secrets.token_urlsafe(16))})


def run_demo(settings: Settings, host: str, port: int) -> None:
    import uvicorn

    from giftwave.api.app import create_app

    console = Console()
    if parse_database_url(settings.database_url).backend is not Backend.SQLITE:
        console.print(
            "[yellow]note: the demo seeds the database named by GIFTWAVE_DATABASE_URL[/yellow]"
        )
    settings = with_admin_token(settings)
    assert settings.admin_token is not None
    token = settings.admin_token.get_secret_value()
    ids = seed_demo(settings)
    base = f"http://{host}:{port}"
    rose = json.dumps(
        {
            "transfers": [
                {
                    "id": "rose-1-c",
                    "debit_account_id": ids["ana"],
                    "credit_account_id": ids["gifts_spent"],
                    "amount": 1,
                    "code": "gift",
                    "linked": True,
                },
                {
                    "id": "rose-1-d",
                    "debit_account_id": ids["diamonds_issued"],
                    "credit_account_id": ids["creator"],
                    "amount": 1,
                    "code": "gift",
                },
            ]
        },
        separators=(",", ":"),
    )
    console.print(
        f"""
[bold]giftwave demo[/bold] — a seeded ledger on {settings.database_url}
  Creator luna has received gifts from {len(DEMO_VIEWERS)} viewers (each topped up 7,000 coins).
  This release serves the ledger API; the viewer page arrives with the web issue.

  API docs (try it out there):  {base}/docs
  Admin token for the ledger API: {token}
  Luna's diamonds:
    curl -H 'Authorization: Bearer {token}' {base}/v1/ledger/accounts/creator:luna:diamonds
  Send a Rose from ana:
    curl -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' \\
      -d '{rose}' {base}/v1/ledger/transfers
  Check every invariant:  .venv/bin/giftwave ledger verify
""",
        highlight=False,
        soft_wrap=True,  # the commands must stay copy-pasteable, whatever the width
    )
    tune_runtime()
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        log_level="info",
    )
