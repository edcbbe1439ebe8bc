"""Profiles, the home page's "Following" and the share figures a share answers, on both
databases (in process; the browser tests are test_web_profiles.py and test_web_share_panel.py).

A profile (``/@handle``) lists published clips only, says whether the person is live with the
way in, and is the site's 404 page for an unknown, malformed or blocked handle. Home lists who
the visitor follows: live ones with their room, the others smaller, bounded; nobody else's.
``POST /v1/shares`` answers the target's figures after the share."""

from __future__ import annotations

import re

import httpx
from economy_client import ADMIN, AppFactory, Person, economy_app, register

from giftwave.api.follows import HOME_FOLLOWED_OFFLINE
from giftwave.api.state import app_services
from giftwave.clips.library import ClipSource, ClipStatus, insert_clip

__all__ = ["economy_app"]


def _clip(
    client: httpx.AsyncClient, creator: Person, clip_id: str, title: str, status: str
) -> None:
    with app_services(client.app).db.begin() as conn:
        insert_clip(
            conn,
            clip_id,
            creator.id,
            title,
            ClipSource.UPLOAD,
            ClipStatus(status),
            "video/mp4",
            duration_ms=83_400,
        )


async def _page(client: httpx.AsyncClient, path: str, who: Person | None = None) -> httpx.Response:
    """A page as a browser asks for it; ``who``'s session by cookie (pages read no bearer)."""
    transport = httpx.ASGITransport(app=client.app, raise_app_exceptions=False)  # type: ignore[attr-defined]
    async with httpx.AsyncClient(transport=transport, base_url="http://giftwave.test") as browser:
        if who is not None:
            browser.cookies.set("gw_session", who.auth["Authorization"].split()[1])
        return await browser.get(path, headers={"Accept": "text/html"})


async def test_a_profile_shows_live_and_published_clips_only(economy_app: AppFactory) -> None:
    async with economy_app() as client:
        luna = await register(client, "creator")
        handle = luna.user["handle"]
        _clip(client, luna, "cl_ready0000001", "Sunset <b>set</b>", "ready")
        _clip(client, luna, "cl_making000001", "Still cooking", "processing")
        _clip(client, luna, "cl_broken000001", "Broken upload", "failed")

        page = await _page(client, f"/@{handle}")
        assert page.status_code == 200, page.text
        html = page.text
        assert f"@<bdi>{handle}</bdi>" in html
        assert 'href="/clips/cl_ready0000001"' in html
        assert "Sunset &lt;b&gt;set&lt;/b&gt;" in html  # user text escaped
        assert "1:23" in html  # 83.4 s
        assert "Still cooking" not in html
        assert "Broken upload" not in html
        assert 'id="profile-offline"' in html
        assert "0 followers" in html

        stream = await luna.go_live("Piano at dusk")
        fan = await register(client)
        assert (await client.put(f"/v1/me/following/{luna.id}", headers=fan.auth)).is_success
        html = (await _page(client, f"/@{handle.upper()}", fan)).text  # handles are lowercase
        assert f'href="/live/{stream}"' in html
        assert "Piano at dusk" in html
        assert 'aria-pressed="true"' in html  # the visitor follows them
        assert "1 follower<" in html
        # The creator sees a way to their studio's clips; others do not.
        assert 'href="/studio/clips"' not in html
        assert 'href="/studio/clips"' in (await _page(client, f"/@{handle}", luna)).text

        # Unknown, malformed and blocked: the site's 404 page, in the visitor's language.
        for path in ("/@nobody_here", "/@x", "/@" + "a" * 300, "/@..", "/@%3Cscript%3E"):
            missing = await _page(client, path)
            assert missing.status_code == 404, path
            assert "There is no such page" in missing.text
            assert "<script>" not in missing.text
        r = await client.patch(
            f"/v1/admin/users/{luna.id}", json={"status": "blocked"}, headers=ADMIN
        )
        assert r.status_code == 200, r.text
        assert (await _page(client, f"/@{handle}")).status_code == 404


async def test_home_lists_who_you_follow_live_first(economy_app: AppFactory) -> None:
    async with economy_app() as client:
        fan, stranger = await register(client), await register(client)
        live, quiet = await register(client, "creator"), await register(client, "creator")
        unfollowed = await register(client, "creator")
        stream = await live.go_live("Morning show")
        await unfollowed.go_live("Not for the fan")

        home = (await _page(client, "/", fan)).text
        assert 'id="following"' not in home  # follows nobody: no section
        assert 'id="following"' not in (await _page(client, "/")).text  # anonymous

        for person in (live, quiet):
            r = await client.put(f"/v1/me/following/{person.id}", headers=fan.auth)
            assert r.status_code == 201, r.text
        home = (await _page(client, "/", fan)).text
        following = home[home.index('id="following"') : home.index("</section>")]
        assert re.search(rf'href="/live/{stream}" data-user="{live.id}"', following)
        assert "Morning show" in following
        assert f'href="/@{quiet.user["handle"]}"' in following  # offline: the profile
        assert f'href="/@{live.user["handle"]}"' not in following  # live: the room instead
        assert "Not for the fan" not in following
        assert unfollowed.user["handle"] not in following
        assert 'id="following"' not in (await _page(client, "/", stranger)).text

        # Everyone live is a card; the offline ones are bounded.
        await live.post(f"/v1/streams/{stream}/end")
        extra = [await register(client) for _ in range(HOME_FOLLOWED_OFFLINE + 2)]
        for person in extra:
            assert (await client.put(f"/v1/me/following/{person.id}", headers=fan.auth)).is_success
        home = (await _page(client, "/", fan)).text
        following = home[home.index('id="following"') : home.index("</section>")]
        assert 'id="following-none-live"' in following
        assert following.count('href="/@') == HOME_FOLLOWED_OFFLINE
        assert f'href="/@{extra[-1].user["handle"]}"' in following  # most recently followed


async def test_a_share_answers_the_figures_after_it(economy_app: AppFactory) -> None:
    async with economy_app() as client:
        creator, ana, ben = (
            await register(client, "creator"),
            await register(client),
            await register(client),
        )
        stream = await creator.go_live()
        link = {"target_kind": "stream", "target_id": stream, "channel": "copy"}
        first = await ana.post("/v1/shares", link)
        assert first.status_code == 201, first.text
        assert (first.json()["shares"], first.json()["sharers_last_hour"]) == (1, 1)
        again = await ana.post("/v1/shares", link)  # the same link: no new share
        assert again.status_code == 200
        assert (again.json()["shares"], again.json()["sharers_last_hour"]) == (1, 1)
        qr = await ana.post("/v1/shares", link | {"channel": "qr"})
        assert (qr.json()["shares"], qr.json()["sharers_last_hour"]) == (2, 1)
        other = await ben.post("/v1/shares", link)
        assert (other.json()["shares"], other.json()["sharers_last_hour"]) == (3, 2)
        sharers = (await client.get(f"/v1/streams/{stream}/sharers")).json()
        assert (sharers["shares"], sharers["sharers_last_hour"]) == (3, 2)  # the same figures
        profile = await ana.post(
            "/v1/shares", {"target_kind": "profile", "target_id": str(creator.id), "channel": "x"}
        )
        assert (profile.json()["shares"], profile.json()["sharers_last_hour"]) == (1, 1)
