"""``giftwave demo``: a seeded demo economy on SQLite, served, with honest directions."""

from __future__ import annotations

import asyncio
import json
import secrets
from dataclasses import dataclass

import httpx
from pydantic import SecretStr
from rich.console import Console

from giftwave.config import Settings
from giftwave.db.engine import make_engine, migrate
from giftwave.db.urls import Backend, parse_database_url
from giftwave.tuning import tune_runtime

DEMO_CREATOR = "luna"
DEMO_ADMIN = "ops"
DEMO_VIEWERS = ("ana", "bodhi", "chen", "dara", "eli")
DEMO_PASSWORD = "giftwave-demo"
DEMO_TOPUP_COINS = 7000
# (viewer, gift, count): a believable first evening.
DEMO_GIFTS = (
    ("ana", "rose", 57),
    ("bodhi", "finger_heart", 3),
    ("chen", "hand_hearts", 1),
    ("dara", "rose", 12),
    ("eli", "disco_ball", 1),
)


@dataclass(frozen=True, slots=True)
class DemoSeed:
    stream_id: str
    creator_id: int
    viewer_ids: dict[str, int]
    admin_id: int


def seed_demo(settings: Settings) -> DemoSeed:
    """Migrate, then play a first evening through the real API: sign-ups, sandbox purchases,
    a live stream, gifts. Idempotent: a second run finds everything done and changes nothing."""
    engine = make_engine(parse_database_url(settings.database_url))
    migrate(engine)
    engine.dispose()
    return asyncio.run(_seed(with_admin_token(settings)))


async def _seed(settings: Settings) -> DemoSeed:
    from giftwave.api.app import create_app

    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://demo.internal") as client,
    ):
        creator_auth, creator_id = await _person(client, DEMO_CREATOR, "creator")
        viewers = {name: await _person(client, name, "viewer") for name in DEMO_VIEWERS}
        for auth, _ in viewers.values():
            await _top_up(client, auth)
        stream_id = await _live_stream(client, creator_auth)
        for name, gift_id, count in DEMO_GIFTS:
            auth = viewers[name][0]
            for i in range(count):
                r = await client.post(
                    f"/v1/streams/{stream_id}/gifts",
                    json={"gift_id": gift_id, "count": 1, "idempotency_key": f"demo-{gift_id}-{i}"},
                    headers=auth,
                )
                _expect(r, 201)
        admin_id = await _admin(client, settings)
    return DemoSeed(stream_id, creator_id, {name: v[1] for name, v in viewers.items()}, admin_id)


def _expect(response: httpx.Response, *statuses: int) -> None:
    if response.status_code not in statuses:
        raise RuntimeError(f"demo seed: {response.request.url} answered {response.text}")


async def _person(client: httpx.AsyncClient, handle: str, role: str) -> tuple[dict[str, str], int]:
    r = await client.post(
        "/v1/auth/register",
        json={
            "handle": handle,
            "email": f"{handle}@demo.giftwave.invalid",
            "password": DEMO_PASSWORD,
            "birth_date": "1995-06-01",
            "country": "US",
            "role": role,
        },
    )
    if r.status_code == 409:  # seeded before: log in instead
        r = await client.post("/v1/auth/login", json={"login": handle, "password": DEMO_PASSWORD})
    _expect(r, 200, 201)
    body = r.json()
    return {"Authorization": f"Bearer {body['token']}"}, int(body["user"]["id"])


async def _admin(client: httpx.AsyncClient, settings: Settings) -> int:
    """A login for the admin console: a user given the admin role with the operator's token,
    as an operator would (the same call again changes nothing)."""
    assert settings.admin_token is not None
    _, admin_id = await _person(client, DEMO_ADMIN, "viewer")
    r = await client.patch(
        f"/v1/admin/users/{admin_id}",
        json={"role": "admin"},
        headers={"Authorization": f"Bearer {settings.admin_token.get_secret_value()}"},
    )
    _expect(r, 200)
    return admin_id


async def _top_up(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    packages = (await client.get("/v1/coin-packages")).json()
    package = next(p for p in packages if p["coins"] == DEMO_TOPUP_COINS)
    r = await client.post(
        "/v1/topups",
        json={"package_id": package["id"], "idempotency_key": "demo-topup"},
        headers=auth,
    )
    _expect(r, 201)
    order = r.json()
    if order["status"] == "open":
        session = order["checkout_url"].rsplit("/", 1)[1]
        r = await client.post(
            f"/sandbox/checkout/{session}/pay", headers={"Accept": "application/json"}
        )
        _expect(r, 200)


async def _live_stream(client: httpx.AsyncClient, auth: dict[str, str]) -> str:
    r = await client.post(
        "/v1/streams",
        json={"title": "Luna plays requests (demo)", "language": "en"},
        headers=auth,
    )
    if r.status_code == 409:
        return str(r.json()["stream_id"])
    _expect(r, 201)
    return str(r.json()["id"])


def with_admin_token(settings: Settings) -> Settings:
    """The demo's settings: the operator's admin token, or a fresh random one."""
    if settings.admin_token is not None:
        return settings
    # model_copy does not validate: the value must already be a SecretStr.
    return settings.model_copy(update={"admin_token": SecretStr(secrets.token_urlsafe(16))})


def run_demo(settings: Settings, host: str, port: int) -> None:
    import uvicorn

    from giftwave.api.app import UVICORN_OPTIONS, create_app

    console = Console()
    if parse_database_url(settings.database_url).backend is not Backend.SQLITE:
        console.print(
            "[yellow]note: the demo seeds the database named by GIFTWAVE_DATABASE_URL[/yellow]"
        )
    settings = with_admin_token(settings)
    assert settings.admin_token is not None
    token = settings.admin_token.get_secret_value()
    seed = seed_demo(settings)
    base = f"http://{host}:{port}"
    register = json.dumps(
        {
            "handle": "newcomer",
            "email": "newcomer@example.org",
            "password": "choose-a-password",
            "birth_date": "1990-01-01",
            "country": "US",
        },
        separators=(",", ":"),
    )
    console.print(
        f"""
[bold]giftwave demo[/bold] on {settings.database_url}
  {DEMO_CREATOR} is live (stream {seed.stream_id}); {len(DEMO_VIEWERS)} demo viewers bought
  {DEMO_TOPUP_COINS:,} coins each in the sandbox and sent gifts. The viewer page arrives with the
  web issue; today everything is the REST API, documented and runnable at:

  API docs:  {base}/docs

  Try it yourself (bash):
    TOKEN=$(curl -s {base}/v1/auth/register -H 'Content-Type: application/json' \\
      -d '{register}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
    curl -s {base}/v1/topups -H "Authorization: Bearer $TOKEN" \\
      -H 'Content-Type: application/json' \\
      -d '{{"coins":700,"idempotency_key":"first"}}'
    # open the checkout_url it prints, press Pay, then send a Rose:
    curl -s {base}/v1/streams/{seed.stream_id}/gifts -H "Authorization: Bearer $TOKEN" \\
      -H 'Content-Type: application/json' -d '{{"gift_id":"rose","idempotency_key":"r1"}}'

  Demo logins (password {DEMO_PASSWORD}): {DEMO_CREATOR} (creator), {", ".join(DEMO_VIEWERS)},
    {DEMO_ADMIN} (admin: the admin console is {base}/admin)
  Admin token (admin routes, ledger API): {token}
  Check every ledger invariant:  .venv/bin/giftwave ledger verify
""",
        highlight=False,
        soft_wrap=True,  # the commands must stay copy-pasteable, whatever the width
    )
    tune_runtime()
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        **UVICORN_OPTIONS,
    )
