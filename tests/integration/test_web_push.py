"""The inbox page in Chromium, in English, Spanish and Arabic (right to left): the notice a
creator's going live left is listed in the page's language; the browser's notification
permission is asked only after the user clicks "Turn on push notifications", never on load
(Notification.requestPermission and PushManager.subscribe are instrumented by an init script,
and subscribe answers a fake browser subscription on loopback: Chromium's own push service is
never contacted); the subscription the click made reaches the server. The opt-in itself is the
profile's "Notify me" toggle. No console errors."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
from browser import chromium, collect_errors, log_in
from liveclient import go_live, named_person
from playwright.async_api import expect
from push_stub import FakeBrowser, b64url
from serverproc import one_server
from sqlalchemy import select

from giftwave.db.engine import make_engine
from giftwave.db.tables import push_subscriptions
from giftwave.db.urls import DatabaseUrl
from giftwave.notify.vapid import generate_private_key

PASSWORD = "pw-pw-pw-pw"  # liveclient.person's
LIVE_TEXT = {"en": "is live", "es": "está en directo", "ar": "في بث مباشر"}
BUTTON = {
    "en": "Turn on push notifications",
    "es": "Activar notificaciones push",
    "ar": "تفعيل الإشعارات الفورية",
}

ON = {
    "en": "Push notifications are on for this browser.",
    "es": "Las notificaciones push están activadas en este navegador.",
    "ar": "الإشعارات الفورية مفعّلة في هذا المتصفح.",
}

# Records every call; subscribe answers the fake subscription (no real push service).
INSTRUMENT = """
window.__pushCalls = [];
const askPermission = Notification.requestPermission.bind(Notification);
Notification.requestPermission = (...args) => {
  window.__pushCalls.push("requestPermission");
  return askPermission(...args);
};
PushManager.prototype.subscribe = async function (options) {
  window.__pushCalls.push("subscribe");
  const fake = %s;
  if (!options || options.userVisibleOnly !== true || !options.applicationServerKey) {
    throw new Error("subscribe without userVisibleOnly and the server key");
  }
  return { endpoint: fake.endpoint, toJSON: () => fake };
};
"""


@pytest.mark.parametrize("bare_db_url", ["sqlite"], indirect=True)
async def test_push_permission_only_after_a_click_in_three_languages(
    bare_db_url: DatabaseUrl, tmp_path: Path
) -> None:
    env = {
        "GIFTWAVE_VAPID_PRIVATE_KEY": generate_private_key(),
        "GIFTWAVE_PUSH_ALLOW_PRIVATE_ADDRESSES": "true",
    }
    with one_server(bare_db_url, tmp_path, **env) as server:
        base = server.base_url
        async with httpx.AsyncClient(base_url=base, timeout=30) as http, chromium() as browser:
            _, creator_token, creator = await named_person(http, "creator")
            fan_id, _, fan = await named_person(http, "viewer")
            # "Notify me" on the creator's profile (in Arabic: the toggle's words follow).
            profile = await log_in(browser, base, fan, PASSWORD, f"/@{creator}", locale="ar")
            toggle = profile.locator("#notify")
            await expect(toggle).to_have_attribute("aria-pressed", "false")
            await expect(toggle).to_have_text("نبّهني")
            await toggle.click()
            await expect(toggle).to_have_attribute("aria-pressed", "true")
            await expect(toggle).to_have_text("التنبيهات مفعّلة")
            await profile.reload()
            await expect(profile.locator("#notify")).to_have_attribute("aria-pressed", "true")
            await profile.context.close()
            await go_live(http, creator_token, "Piano night")

            for n, locale in enumerate(("en", "es", "ar")):
                keys = FakeBrowser()
                fake = {
                    "endpoint": f"http://127.0.0.1:9/push/{locale}",  # never called here
                    "keys": {"p256dh": keys.p256dh, "auth": b64url(keys.auth)},
                }
                page = await log_in(browser, base, fan, PASSWORD, "/me/inbox", locale=locale)
                await page.context.grant_permissions(["notifications"], origin=base)
                await page.context.add_init_script(INSTRUMENT % json.dumps(fake))
                await page.reload()
                errors = collect_errors(page)
                assert await page.get_attribute("html", "dir") == (
                    "rtl" if locale == "ar" else "ltr"
                )
                notice = page.locator(".notice").first
                await expect(notice).to_contain_text(creator)
                await expect(notice).to_contain_text(LIVE_TEXT[locale])
                await expect(notice).to_contain_text("Piano night")

                await asyncio.sleep(0.5)  # whatever a page does on load, it has done
                assert await page.evaluate("window.__pushCalls") == []
                button = page.locator("#push-on")
                await expect(button).to_have_text(BUTTON[locale])
                await button.click()
                await expect(page.locator("#push-state")).to_have_text(ON[locale])
                await expect(button).to_be_disabled()
                assert await page.evaluate("window.__pushCalls") == [
                    "requestPermission",
                    "subscribe",
                ]

                engine = make_engine(bare_db_url)
                try:
                    with engine.connect() as conn:
                        endpoints = (
                            conn.execute(
                                select(push_subscriptions.c.endpoint).where(
                                    push_subscriptions.c.user_id == fan_id
                                )
                            )
                            .scalars()
                            .all()
                        )
                finally:
                    engine.dispose()
                assert len(endpoints) == n + 1
                assert fake["endpoint"] in endpoints
                assert errors == []
                await page.context.close()
