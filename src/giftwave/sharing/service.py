"""The app's sharing: links made and opened, visits recorded (batched, or at once for a
logged-in visitor), touches claimed from the link cookie, events credited; with the caches that
keep the redirect and the gift path cheap, and the per-user limit on making links."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Final

from sqlalchemy import Connection, Engine

from giftwave.clips.library import ClipStatus, find_clip
from giftwave.clock import day_of, day_start_us, now_us
from giftwave.config import Settings
from giftwave.errors import Code, NotFound
from giftwave.identity.users import find_user, require_active
from giftwave.live.streams import find_stream
from giftwave.ratelimit import Rate, UserLimit
from giftwave.sharing.attribution import (
    Event,
    Reach,
    StreamSharer,
    Touched,
    credit_rows,
    reach_of,
    record_credits,
    record_touches,
    record_visit,
    stream_sharers,
    touches_of,
)
from giftwave.sharing.gift_credits import GiftCredits, credit_thread
from giftwave.sharing.links import (
    Channel,
    ShareCount,
    ShareLink,
    TargetKind,
    find_link,
    share,
    share_counts,
)
from giftwave.sharing.visit_writer import Visit, VisitWriter
from giftwave.sharing.visitors import COOKIE_SECRET_NAME, ShareCookie, daily_salt, server_secret
from giftwave.sharing.visitors import visitor_hash as hash_visitor
from giftwave.ttl_cache import TtlCache

log = logging.getLogger(__name__)

DAY_US: Final = 86_400 * 1_000_000
RECENT_US: Final = 3600 * 1_000_000  # "N people shared this in the last hour"
# Making links: a burst of 30, then one every 2 s per user (a person shares a few at a time).
SHARES_BURST: Final = 30
SHARES_PER_S: Final = 0.5
# Links never change but for ``last_shared_at_us``; an unknown code is remembered briefly, so a
# flood of made-up codes costs one query per code per few seconds, not one per request.
LINK_TTL_S: Final = 60.0
MISSING_TTL_S: Final = 5.0
MAX_CACHED_LINKS: Final = 100_000
# A user's touches, read for every gift and room join of theirs: most users have none.
TOUCHES_TTL_S: Final = 10.0
MAX_CACHED_TOUCHERS: Final = 200_000


def _ready_clip(conn: Connection, clip_id: str) -> bool:
    clip = find_clip(conn, clip_id)
    return clip is not None and clip.status is ClipStatus.READY


@dataclass(frozen=True, slots=True)
class Landing:
    shared_by: str | None  # the sharer's handle
    counts: ShareCount


class Sharing:
    def __init__(self, settings: Settings, db: Engine) -> None:
        self.db = db
        self.window_us = settings.share_attribution_days * DAY_US
        self.link_ttl_us = settings.share_link_ttl_days * DAY_US
        # Per user on every node together, once the app gives it the node's limiter.
        self.limiter = UserLimit(
            "share",
            Rate(SHARES_PER_S, SHARES_BURST),
            code=Code.SHARE_RATE_LIMITED,
            detail="too many share links too fast; try again in a moment",
        )
        self._links: TtlCache[str, ShareLink] = TtlCache(
            max_entries=MAX_CACHED_LINKS, ttl_s=LINK_TTL_S
        )
        self._missing: TtlCache[str, bool] = TtlCache(
            max_entries=MAX_CACHED_LINKS, ttl_s=MISSING_TTL_S
        )
        self._touches: TtlCache[int, list[Touched]] = TtlCache(
            max_entries=MAX_CACHED_TOUCHERS, ttl_s=TOUCHES_TTL_S
        )
        self.visits = VisitWriter(db)
        self.gift_credits = GiftCredits(db, self.window_us)
        self.gift_credit_thread = credit_thread(self.gift_credits)
        self._cookie_secret: bytes | None = None
        # The salt of a UTC day, with the day's first and next day's first microsecond: the
        # redirect checks the day with two comparisons.
        self._salt: tuple[int, int, bytes] | None = None

    def start(self) -> None:
        """Start the threads that write visits and credit gifts in batches."""
        self.visits.start()
        self.gift_credit_thread.start()

    def stop(self) -> None:
        """Write the visits queued, then end the threads (gifts not credited yet are, by the
        next start on any node: sharing/gift_credits.py)."""
        self.gift_credit_thread.stop()
        self.visits.stop()

    # --- making links ---------------------------------------------------------------------

    def create(
        self, sharer_id: int, kind: TargetKind, target_id: str, channel: Channel
    ) -> tuple[ShareLink, bool]:
        """The sharer's link to a stream or profile for a channel (the same one again)."""
        with self.db.begin() as conn:
            # Read here, not from the session's (cached) user: a block takes effect at once.
            sharer = find_user(conn, sharer_id)
            if sharer is None:
                raise NotFound(Code.USER_NOT_FOUND, f"no user {sharer_id}")
            require_active(sharer)  # a blocked account spreads no links (account_blocked)
            if kind is TargetKind.CLIP and not _ready_clip(conn, target_id):
                raise NotFound(Code.CLIP_NOT_FOUND, f"no clip {target_id!r}")
            if kind is TargetKind.STREAM and find_stream(conn, target_id) is None:
                raise NotFound(Code.STREAM_NOT_FOUND, f"no stream {target_id!r}")
            if kind is TargetKind.PROFILE and (
                not target_id.isdigit()
                or len(target_id) > 18
                or find_user(conn, int(target_id)) is None
            ):
                raise NotFound(Code.USER_NOT_FOUND, f"no user {target_id!r}")
            link, made = share(conn, sharer_id, kind, target_id, channel, now_us())
        self._links.put(link.code, link)
        return link, made

    # --- opening links --------------------------------------------------------------------

    def cached_link(self, code: str, at_us: int) -> ShareLink | None:
        """The link behind a code when memory knows it still works; None: ask ``live_link``."""
        link = self._links.get(code)
        if link is None or at_us - link.last_shared_at_us > self.link_ttl_us:
            return None
        return link

    def live_link(self, code: str, at_us: int) -> ShareLink | None:
        """The link behind a code if it still works (cached); None: unknown or expired."""
        link = self.cached_link(code, at_us)
        if link is None:
            if self._missing.get(code):
                return None
            with self.db.connect() as conn:
                link = find_link(conn, code)  # maybe renewed since it was cached
            if link is None:
                self._missing.put(code, True)
                return None
            self._links.put(code, link)
        return link if at_us - link.last_shared_at_us <= self.link_ttl_us else None

    def credit(self, code: str, at_us: int) -> tuple[ShareLink, str] | None:
        """The link and its sharer's handle, for the "shared by @…" on the landing page."""
        link = self.live_link(code, at_us)
        if link is None:
            return None
        with self.db.connect() as conn:
            sharer = find_user(conn, link.sharer_id)
        return None if sharer is None else (link, sharer.handle)

    def counts(self, kind: TargetKind, target_id: str, at_us: int) -> ShareCount:
        """One target's share figures: its links, and who shared it in the last hour."""
        with self.db.connect() as conn:
            found = share_counts(conn, kind, [target_id], at_us - RECENT_US)
        return found.get(target_id, ShareCount(0, 0))

    def stream_counts(self, stream_ids: list[str], at_us: int) -> dict[str, ShareCount]:
        """Share counts of streams, with the people who shared each in the last hour."""
        with self.db.connect() as conn:
            return share_counts(conn, TargetKind.STREAM, stream_ids, at_us - RECENT_US)

    def reach(self, sharer_id: int) -> Reach:
        """What a sharer's links did: visits and visitors, and what those people did next."""
        with self.db.connect() as conn:
            return reach_of(conn, sharer_id)

    def stream_sharers(
        self, stream_id: str, limit: int, at_us: int
    ) -> tuple[ShareCount, list[StreamSharer]]:
        """A stream's share counts and its top sharers (404 ``stream_not_found``: no such
        stream)."""
        with self.db.connect() as conn:
            if find_stream(conn, stream_id) is None:
                raise NotFound(Code.STREAM_NOT_FOUND, f"no stream {stream_id!r}")
            counts = share_counts(conn, TargetKind.STREAM, [stream_id], at_us - RECENT_US)
            top = stream_sharers(conn, stream_id, limit)
        return counts.get(stream_id, ShareCount(0, 0)), top

    def landing(self, stream_id: str, via: str, at_us: int) -> Landing:
        """What the viewer page says about sharing: who shared the link it was opened through
        (``via``), and the stream's share counts."""
        credit = self.credit(via, at_us) if via else None
        counts = self.stream_counts([stream_id], at_us).get(stream_id, ShareCount(0, 0))
        return Landing(None if credit is None else credit[1], counts)

    def keys_ready(self, at_us: int) -> bool:
        """Whether the cookie secret and the salt of the day are in memory (no query)."""
        salt = self._salt
        return self._cookie_secret is not None and salt is not None and salt[0] <= at_us < salt[1]

    def load_keys(self, at_us: int) -> None:
        """Read (or make) the cookie secret and the salt of the day: once a day per process."""
        with self.db.begin() as conn:
            self._secret(conn)
            self._daily_salt(conn, at_us)

    def landing_now(self, link: ShareLink) -> str | None:
        """Where a link lands, when that needs no query (a stream's link)."""
        if link.target_kind is TargetKind.STREAM:
            return f"/live/{link.target_id}?via={link.code}"
        return None

    def landing_of(self, link: ShareLink) -> str:
        with self.db.connect() as conn:
            return self._landing(conn, link)

    def visit(
        self,
        link: ShareLink,
        user_id: int | None,
        address: str,
        user_agent: str,
        cookie: str | None,
        at_us: int,
    ) -> tuple[Visit | None, str | None]:
        """The visit to record and the cookie to give (both None: the sharer's own visit).
        Needs ``keys_ready``; no query."""
        if user_id == link.sharer_id:
            return None, None
        assert self._cookie_secret is not None
        assert self._salt is not None
        secret, salt = self._cookie_secret, self._salt[2]
        at_s = at_us // 1_000_000
        before = ShareCookie.decode(secret, cookie) if cookie else None
        after = (
            before.opened(link.code, at_s, self.window_us // 1_000_000)
            if before is not None
            else ShareCookie(link.code, at_s, link.code, at_s)
        )
        visit = Visit(link.id, hash_visitor(salt, address, user_agent), user_id, at_us)
        return visit, after.encode(secret)

    def record(self, link: ShareLink, visit: Visit) -> bool:
        """Queue an anonymous visit for the batch writer; False: write it now (``write``)."""
        return visit.user_id is None and self.visits.offer(visit)

    def write(self, link: ShareLink, visit: Visit) -> None:
        """Commit a visit now, with the touch of a logged-in visitor (attribution needs it at
        once: their next gift may come within a second)."""
        with self.db.begin() as conn:
            record_visit(conn, link.id, visit.visitor_hash, visit.user_id, visit.visited_at_us)
            if visit.user_id is not None:
                record_touches(
                    conn, visit.user_id, [Touched(link.id, link.sharer_id, visit.visited_at_us)]
                )
        if visit.user_id is not None:
            self._touches.drop(visit.user_id)

    def _landing(self, conn: Connection, link: ShareLink) -> str:
        via = f"via={link.code}"
        if link.target_kind is TargetKind.STREAM:
            return f"/live/{link.target_id}?{via}"
        if link.target_kind is TargetKind.CLIP:
            return f"/clips/{link.target_id}?{via}"
        # A profile's link opens the person's profile page (their stream and clips are linked
        # there); a blocked or deleted account has none: Discover.
        person = find_user(conn, int(link.target_id))
        if person is None or person.blocked:
            return f"/?{via}"
        return f"/@{person.handle}?{via}"

    def _daily_salt(self, conn: Connection, at_us: int) -> bytes:
        day = day_of(at_us)
        start = day_start_us(day)
        if self._salt is None or self._salt[0] != start:
            self._salt = (start, start + DAY_US, daily_salt(conn, day, at_us))
        return self._salt[2]

    def _secret(self, conn: Connection) -> bytes:
        if self._cookie_secret is None:
            self._cookie_secret = server_secret(conn, COOKIE_SECRET_NAME, now_us())[0]
        return self._cookie_secret

    # --- crediting ------------------------------------------------------------------------

    def note(
        self,
        user_id: int,
        cookie: str | None,
        event: Event,
        event_key: str,
        *,
        stream_id: str | None = None,
        coins: int = 0,
        at_us: int | None = None,
    ) -> bool:
        """Claim the cookie's links for the user, then credit the event; True if credited."""
        at = now_us() if at_us is None else at_us
        with self.db.begin() as conn:
            if cookie:
                self._claim(conn, user_id, cookie, at)
            touched = touches_of(conn, user_id, at - self.window_us)
            self._touches.put(user_id, touched)
            rows = credit_rows(
                user_id,
                touched,
                event,
                event_key,
                at_us=at,
                window_us=self.window_us,
                stream_id=stream_id,
                coins=coins,
            )
            record_credits(conn, rows)
            return bool(rows)

    def _claim(self, conn: Connection, user_id: int, cookie: str, at_us: int) -> None:
        found = ShareCookie.decode(self._secret(conn), cookie)
        if found is None:
            return
        touched = []
        for code, at_s in (
            (found.first_code, found.first_at_s),
            (found.last_code, found.last_at_s),
        ):
            link = find_link(conn, code)
            touch_us = at_s * 1_000_000
            if link is not None and at_us - self.window_us <= touch_us <= at_us:
                touched.append(Touched(link.id, link.sharer_id, touch_us))
        record_touches(conn, user_id, touched)

    def may_credit(self, user_id: int, cookie: str | None) -> bool:
        """Whether an event of this user could be credited (False: skip the database)."""
        if cookie:
            return True
        cached = self._touches.get(user_id)
        return cached is None or bool(cached)

    async def joined(self, user_id: int, stream_id: str, cookie: str | None) -> None:
        """A logged-in user joined a room: a credit for the link that brought them, if any."""
        if not self.may_credit(user_id, cookie):
            return
        try:
            await asyncio.to_thread(
                self.note, user_id, cookie, Event.JOIN, stream_id, stream_id=stream_id
            )
        except Exception:  # watching matters more than the credit
            log.exception("could not credit a join of %s to a share", stream_id)

    async def signed_up(self, user_id: int, cookie: str | None) -> None:
        if not cookie:
            return
        try:
            await asyncio.to_thread(self.note, user_id, cookie, Event.SIGNUP, "")
        except Exception:  # the account exists; its sharer misses the credit
            log.exception("could not credit sign-up %s to a share", user_id)
