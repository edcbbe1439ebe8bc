"""``giftwave demo``: a seeded demo economy on SQLite, served, with honest directions."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import secrets
import sys
import threading
import webbrowser
from dataclasses import dataclass

import httpx
from pydantic import SecretStr
from rich.console import Console

from giftwave import demo_video
from giftwave.config import Settings
from giftwave.db.engine import make_engine, migrate
from giftwave.db.urls import Backend, parse_database_url
from giftwave.live.streams import set_playback_url
from giftwave.tuning import tune_runtime

log = logging.getLogger(__name__)

DEMO_CREATOR = "luna"
DEMO_ADMIN = "ops"
DEMO_VIEWERS = ("ana", "bodhi", "chen", "dara", "eli")
DEMO_PASSWORD = "giftwave-demo"
DEMO_TOPUP_COINS = 7000
DEMO_GOAL_COINS = 20_000
# (viewer, gift, count): a believable first evening.
DEMO_GIFTS = (
    ("ana", "rose", 57),
    ("bodhi", "finger_heart", 3),
    ("chen", "hand_hearts", 1),
    ("dara", "rose", 12),
    ("eli", "disco_ball", 1),
)


# The fraud rules run in the demo as anywhere (docs/risk.md, "In the demo"), with two
# thresholds of its own: its cast is a handful of accounts made minutes ago that gift only
# luna, which is a laundering funnel by the defaults, and a visitor who tries the payout flow
# cashes out minutes after the first gift, which is a fast cycle.
DEMO_RISK_FUNNEL_ACCOUNTS = 25  # a funnel needs many more fresh accounts than the cast
DEMO_RISK_FAST_CYCLE_S = 60  # the smallest allowed: a demo payout comes minutes after gifts


def demo_card(handle: str) -> str:
    """The sandbox test card a demo viewer pays with: each their own, as real buyers' are (one
    card on many accounts is what the shared-card rule flags)."""
    return f"4000{sum(ord(c) * 31**i for i, c in enumerate(handle)) % 10**12:012d}"


@dataclass(frozen=True, slots=True)
class DemoSeed:
    stream_id: str
    creator_id: int
    viewer_ids: dict[str, int]
    admin_id: int
    overlay_key: str


def seed_demo(settings: Settings) -> DemoSeed:
    """Migrate, then play a first evening through the real API: sign-ups, sandbox purchases,
    a live stream, gifts. Idempotent: a second run finds everything done and changes nothing."""
    engine = make_engine(parse_database_url(settings.database_url))
    migrate(engine)
    engine.dispose()
    return asyncio.run(_seed(with_admin_token(settings)))


def point_stream_at(settings: Settings, stream_id: str, playback_url: str | None) -> None:
    """The demo stream's video for this run: its encoder's playlist, or None (placeholder).
    Set on every start, not only at go-live: the last run may have had ffmpeg and this one not,
    and a URL with nothing behind it would leave a black box where the placeholder should be."""
    engine = make_engine(parse_database_url(settings.database_url))
    with engine.begin() as conn:
        set_playback_url(conn, stream_id, playback_url)
    engine.dispose()


def _ready(video: demo_video.DemoVideo) -> demo_video.DemoVideo | None:
    if not video.wait_ready():
        log.warning("demo video: ffmpeg made no playlist, the room shows a placeholder")
        video.stop()
        return None
    return video


async def _seed(settings: Settings) -> DemoSeed:
    from giftwave.api.app import IN_PROCESS_BASE, create_app

    # The seed signs its whole cast up from one in-process address, on every start; the
    # per-address sign-up limit is for strangers on the network.
    app = create_app(settings.model_copy(update={"register_address_free": 100_000}))
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url=IN_PROCESS_BASE) as client,
    ):
        creator_auth, creator_id = await _person(client, DEMO_CREATOR, "creator")
        viewers = {name: await _person(client, name, "viewer") for name in DEMO_VIEWERS}
        for name, (auth, _) in viewers.items():
            await top_up(client, auth, card=demo_card(name))
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
        r = await client.get("/v1/creators/me/overlay", headers=creator_auth)
        _expect(r, 200)
    viewer_ids = {name: v[1] for name, v in viewers.items()}
    return DemoSeed(stream_id, creator_id, viewer_ids, admin_id, r.json()["key"])


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


async def top_up(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    *,
    key: str = "demo-topup",
    coins: int = DEMO_TOPUP_COINS,
    card: str,
) -> None:
    """Buy a coin package at the sandbox checkout, as a person would: order, then Pay with
    ``card``."""
    packages = (await client.get("/v1/coin-packages")).json()
    package = next(p for p in packages if p["coins"] == coins)
    r = await client.post(
        "/v1/topups",
        json={"package_id": package["id"], "idempotency_key": key},
        headers=auth,
    )
    _expect(r, 201)
    order = r.json()
    if order["status"] == "open":
        session = order["checkout_url"].rsplit("/", 1)[1]
        r = await client.post(
            f"/sandbox/checkout/{session}/pay",
            data={"card": card},
            headers={"Accept": "application/json"},
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
    stream_id = str(r.json()["id"])
    r = await client.put(
        f"/v1/streams/{stream_id}/goal",
        json={"kind": "coins", "target": DEMO_GOAL_COINS, "title": "A new microphone"},
        headers=auth,
    )
    _expect(r, 200)
    return stream_id


def with_admin_token(settings: Settings) -> Settings:
    """The demo's settings: the operator's admin token, or a fresh random one."""
    if settings.admin_token is not None:
        return settings
    # model_copy does not validate: the value must already be a SecretStr.
    return settings.model_copy(update={"admin_token": SecretStr(secrets.token_urlsafe(16))})


def demo_settings(settings: Settings) -> Settings:
    """What the demo changes: an admin token, its audience labelled as simulated, cookies a
    browser keeps over plain http (a demo has no TLS in front of it), payouts through the
    sandbox payout provider unless another one is chosen (a creator onboards at its page), the
    payout policy on, the sandbox's fees charged, and the fraud rules' demo thresholds."""
    settings = with_admin_token(settings)
    secure = bool(settings.public_url and settings.public_url.startswith("https://"))
    provider = "sandbox" if settings.payout_provider == "none" else settings.payout_provider
    return settings.model_copy(
        update={
            "demo_audience": DEMO_VIEWERS,
            "cookie_secure": secure,
            "payout_provider": provider,
            **_demo_payouts(settings),
            **_demo_risk(settings),
        }
    )


def _demo_risk(settings: Settings) -> dict[str, int]:
    """The fraud rules stay on; only the two thresholds the demo's own cast would trip are
    moved (``DEMO_RISK_*``), each unless the operator set their own. Printed at the start."""
    defaults = Settings.model_fields
    changes: dict[str, int] = {}
    if settings.risk_funnel_accounts == defaults["risk_funnel_accounts"].default:
        changes.update(risk_funnel_accounts=DEMO_RISK_FUNNEL_ACCOUNTS)
    if settings.risk_fast_cycle_s == defaults["risk_fast_cycle_s"].default:
        changes.update(risk_fast_cycle_s=DEMO_RISK_FAST_CYCLE_S)
    return changes


def _demo_payouts(settings: Settings) -> dict[str, int]:
    """The demo approves payouts up to $200 without a person (its creators are new, so no
    history is asked) and its sandbox charges a fee like a real provider (25 cents + 0.25 %),
    unless the operator set their own."""
    changes: dict[str, int] = {}
    if settings.payout_auto_approve_below_cents == 0:
        changes.update(payout_auto_approve_below_cents=20_000)
        changes.update(payout_auto_approve_min_history_days=0)
    if settings.payout_sandbox_fee_fixed_minor == 0 and settings.payout_sandbox_fee_bps == 0:
        changes.update(payout_sandbox_fee_fixed_minor=25, payout_sandbox_fee_bps=25)
    return changes


def _can_open_browser() -> bool:
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _audience_thread(base: str, stream_id: str) -> threading.Thread:
    from giftwave.demo_audience import run_audience

    def run() -> None:
        with contextlib.suppress(Exception):  # the demo never dies of its audience
            asyncio.run(run_audience(base, stream_id, DEMO_VIEWERS, DEMO_PASSWORD))

    return threading.Thread(target=run, name="demo-audience", daemon=True)


def run_demo(
    settings: Settings, host: str, port: int, *, open_browser: bool = True, audience: bool = True
) -> None:
    import uvicorn

    from giftwave.api.app import UVICORN_OPTIONS, create_app

    console = Console()
    if parse_database_url(settings.database_url).backend is not Backend.SQLITE:
        console.print(
            "[yellow]note: the demo seeds the database named by GIFTWAVE_DATABASE_URL[/yellow]"
        )
    settings = demo_settings(settings)
    assert settings.admin_token is not None
    token = settings.admin_token.get_secret_value()
    # Started from this thread, which lives as long as the demo: the encoder is told to stop
    # when the thread that started it ends (demo_video._child_bounds).
    video = demo_video.start()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        # The encoder's first segment comes while the seed runs.
        ready = None if video is None else pool.submit(_ready, video)
        seed = seed_demo(settings)
        video = None if ready is None else ready.result()
    point_stream_at(settings, seed.stream_id, None if video is None else demo_video.PLAYBACK_URL)
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    base = f"http://{shown_host}:{port}"
    watch = f"{base}/live/{seed.stream_id}"
    viewers = ", ".join(DEMO_VIEWERS)
    video_line = (
        "none (ffmpeg not found): the room shows a placeholder"
        if video is None
        else f"a live test scene from FFmpeg, {base}{demo_video.PLAYBACK_URL}"
    )
    console.print(
        f"""
[bold]giftwave demo[/bold] on {settings.database_url}

  Open the live room:  [bold]{watch}[/bold]

  {DEMO_CREATOR} is live with a goal; {", ".join(DEMO_VIEWERS)} are a [bold]simulated
  audience[/bold] (labelled so on every page) sending gifts, likes and chat.
  Sign up on the page, buy coins at the sandbox checkout (no real money), and gift yourself.
  Payouts go through the sandbox payout provider: set up the payout account in the studio.
  Fraud rules on ({base}/admin/risk): a funnel here takes {settings.risk_funnel_accounts} fresh
    accounts, a fast cycle is a payout within {settings.risk_fast_cycle_s} s of the first gift
    (docs/risk.md, "In the demo").

  Logins (password {DEMO_PASSWORD}): {DEMO_CREATOR} (creator, {base}/studio), {viewers},
    {DEMO_ADMIN} (admin, {base}/admin)
  OBS overlay (paste into OBS as a browser source):  {base}/overlay/live?key={seed.overlay_key}
  Gift panel for an Owncast external action:  {base}/embed/{seed.stream_id}
  Video:  {video_line}
  API docs:     {base}/docs     Admin token (admin API, ledger API): {token}
  Check every ledger invariant:  .venv/bin/giftwave ledger verify
""",
        highlight=False,
        soft_wrap=True,  # the addresses must stay copy-pasteable, whatever the width
    )
    tune_runtime()
    if audience:
        _audience_thread(f"http://{shown_host}:{port}", seed.stream_id).start()
    if open_browser and _can_open_browser():
        threading.Timer(1.5, webbrowser.open, args=(watch,)).start()
    app = create_app(settings)
    if video is not None:  # the encoder's folder, on the same site as the page
        app.mount(demo_video.HLS_PATH, demo_video.HlsFiles(directory=video.folder))
    try:
        uvicorn.run(
            app,
            host=host,
            port=port,
            **UVICORN_OPTIONS,
            log_config=None,  # uvicorn's lines go through our one handler (logs.py), redacted
        )
    finally:
        if video is not None:
            video.stop()
