"""One typed settings object, read from ``GIFTWAVE_*`` environment variables.

A bad value fails at start with a message that names the variable, never later at first use.
"""

from __future__ import annotations

import base64
import itertools
import os
import re
from collections.abc import Mapping, Sequence
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any, Final, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from giftwave.origins import normalize_origin

ENV_PREFIX = "GIFTWAVE_"
# What GIFTWAVE_TRENDING_WEIGHTS may weigh: trending.engine.Signal's values. The settings import
# no domain package (pyproject.toml, the layers); trending.service checks that the two agree.
TRENDING_SIGNALS: Final = frozenset({"gift_coin", "share", "like", "new_viewer"})
# A DNS name or IPv4 address, or an IPv6 address in brackets: what a Host header names.
_HOST_NAME_RE = re.compile(
    r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]{2,45}\]"
)


# Gifter levels (social/levels.py): one threshold of lifetime coins per level.
LEVELS: Final = 50
LEVEL_MAX_THRESHOLD_COINS: Final = 2**53  # exact as a JSON number in every client


def level_thresholds_problem(thresholds: Sequence[int]) -> str | None:
    """Why ``thresholds`` is not a level curve (None: it is): 50 whole numbers of coins, the
    first at least 1, each above the one before."""
    if len(thresholds) != LEVELS:
        return f"a curve has {LEVELS} thresholds, one per level; got {len(thresholds)}"
    if thresholds[0] < 1:
        return "level 1 needs at least 1 coin"
    if thresholds[-1] > LEVEL_MAX_THRESHOLD_COINS:
        return f"thresholds are at most {LEVEL_MAX_THRESHOLD_COINS} coins"
    for level, (before, after) in enumerate(pairwise(thresholds), start=2):
        if after <= before:
            return f"level {level} needs more coins than level {level - 1} ({after} <= {before})"
    return None


# The colours a paid message's tier may have: each is a class the pages and the overlay style
# (web/static/app.css, ``paid-<colour>``).
PaidMessageColour = Literal["blue", "teal", "green", "yellow", "orange", "magenta", "red"]
PAID_MESSAGE_COLOURS: Final = get_args(PaidMessageColour)


class PaidMessageTier(BaseModel):
    """One row of the published table: a gift of ``min_coins`` or more pins its message for
    ``pinned_s`` seconds, in ``colour`` (docs/economy.md, "Paid highlighted messages")."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    min_coins: Annotated[int, Field(ge=1, le=2**40)]
    pinned_s: Annotated[int, Field(ge=1, le=24 * 3600)]
    colour: PaidMessageColour


DEFAULT_PAID_MESSAGE_TIERS: Final = (
    PaidMessageTier(min_coins=100, pinned_s=60, colour="blue"),
    PaidMessageTier(min_coins=500, pinned_s=120, colour="teal"),
    PaidMessageTier(min_coins=1_000, pinned_s=300, colour="green"),
    PaidMessageTier(min_coins=5_000, pinned_s=900, colour="orange"),
    PaidMessageTier(min_coins=10_000, pinned_s=1_800, colour="red"),
)


class ConfigError(Exception):
    """A ``GIFTWAVE_*`` variable holds a value giftwave cannot run with."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    database_url: str = "sqlite:///./giftwave.db"
    broker_url: str = "memory://"
    # Bearer token for the operator's ledger API; unset means that API is switched off.
    admin_token: SecretStr | None = None

    # Logs (logs.py): one JSON object a line for a collector, or text for a person; unset
    # means JSON unless stderr is a terminal. Below the level, lines are dropped.
    log_format: Literal["json", "text"] | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    # A request id and the HTTP metrics for every request (api/request_observer.py). Off
    # only to measure what they cost (docs/benchmarks.md): an operator needs both.
    observability: bool = True
    # The most bytes a request body may have, checked before a route reads it (413
    # payload_too_large; api/body_limit.py, docs/security.md). The few routes that need more
    # (payment webhooks, ledger batches, clip uploads) or less (a gift) have their own.
    request_body_max_bytes: Annotated[int, Field(ge=1024, le=16 * 1024**2)] = 32 * 1024

    # Posting engine: one writer per process drains a bounded queue into one transaction.
    ledger_batch_max_transfers: Annotated[int, Field(ge=1, le=100_000)] = 8192
    ledger_queue_max_submissions: Annotated[int, Field(ge=1, le=10_000_000)] = 100_000
    ledger_batch_linger_ms: Annotated[float, Field(ge=0, le=5)] = 0.0
    ledger_expiry_interval_s: Annotated[float, Field(gt=0, le=3600)] = 1.0
    # Where the ledger's planning and SQL run: "thread" (the writer thread of this process) or
    # "process" (a child process: +25% gifts/s on SQLite, a core of its own; see benchmarks).
    ledger_writer: Literal["thread", "process"] = "thread"
    # Where this node runs the ledger's followers (gifter levels, fan club points from gifts,
    # the fraud rules; followers.py): "process" (a child process: the serving process keeps its
    # interpreter for requests), "inline" (threads of the serving process) or "off" (other
    # nodes run them; each chunk is applied once wherever it runs).
    followers: Literal["process", "inline", "off"] = "process"

    # SIGTERM: the process drains (api/drain.py) and exits within this long, whatever is still
    # running: an orchestrator kills it soon after anyway (Kubernetes: 30 s), and an exit we
    # choose logs why. Keep it below the orchestrator's grace period.
    drain_timeout_s: Annotated[float, Field(ge=1, le=600)] = 20.0

    # Where this server is reachable from browsers and from payment providers' webhooks;
    # unset means "the address the request came in on".
    public_url: str | None = None
    # Host names this server answers for (JSON list, no scheme or port; "[::1]" for IPv6); a
    # request naming another Host is refused (400 unknown_host). Unset: the loopback names.
    # The host of GIFTWAVE_PUBLIC_URL is always allowed. Why: with no public URL, absolute URLs
    # (overlay, checkout return, share links) are built from the Host header, which the caller
    # chooses; and a name resolving to this machine must not reach it (DNS rebinding).
    allowed_hosts: tuple[str, ...] = ("localhost", "127.0.0.1", "[::1]")
    # Other sites whose pages may act in a room's WebSocket with the visitor's session cookie
    # (JSON list of origins, "https://partner.example"): embeds that rely on the cookie. Any
    # other origin's cookie socket may watch but not act, or a page anywhere could send gifts
    # and chat as whoever visits it (cross-site WebSocket hijacking).
    allowed_origins: tuple[str, ...] = ()
    # A ticket opens one room socket as its user (POST /v1/streams/{id}/ws-ticket): this long,
    # once. Short, because it is in the socket's URL, and URLs end up in logs.
    ws_ticket_ttl_s: Annotated[int, Field(ge=1, le=300)] = 30

    # Identity. Argon2id cost: the library's defaults; tests and benchmarks lower them.
    password_time_cost: Annotated[int, Field(ge=1, le=20)] = 3
    password_memory_kib: Annotated[int, Field(ge=8, le=1_048_576)] = 65_536
    session_ttl_s: Annotated[int, Field(ge=60, le=366 * 86_400)] = 30 * 86_400
    # Each Argon2 hash holds password_memory_kib while it runs: at most this many at once per
    # process (a flood of log-ins must not exhaust memory); the next wait this long for a turn,
    # then are answered 503 busy.
    password_hashes_at_once: Annotated[int, Field(ge=1, le=256)] = 4
    password_hash_wait_ms: Annotated[int, Field(ge=0, le=60_000)] = 2000
    # Log-in throttle (identity/throttle.py, in the database: it holds across processes and
    # nodes): this many wrong attempts per login name, and per client address (higher: many
    # people may share one address), then each further one waits base, 2 x base, ... up to max.
    login_attempts_free: Annotated[int, Field(ge=1, le=1000)] = 5
    login_address_attempts_free: Annotated[int, Field(ge=1, le=100_000)] = 50
    login_backoff_base_ms: Annotated[int, Field(ge=1, le=600_000)] = 1000
    login_backoff_max_s: Annotated[int, Field(ge=1, le=86_400)] = 900
    # Sign-ups per client address: this many at once, refilled at this many per hour; past
    # them, the same backoff. Bounds mass sign-ups and probing which e-mails are registered.
    register_address_free: Annotated[int, Field(ge=1, le=100_000)] = 10
    register_address_per_hour: Annotated[int, Field(ge=1, le=100_000)] = 10
    cookie_secure: bool = True
    # Buying coins, sending and receiving gifts: this age, or the country's own.
    min_age: Annotated[int, Field(ge=13, le=25)] = 18
    min_age_by_country: dict[str, Annotated[int, Field(ge=13, le=25)]] = {"KR": 19}

    # Gifting.
    gift_max_count: Annotated[int, Field(ge=1, le=10_000)] = 999
    gift_rate_per_s: Annotated[float, Field(ge=0, le=10_000)] = 20.0  # 0: no rate limit
    gift_rate_burst: Annotated[int, Field(ge=1, le=100_000)] = 60
    gift_daily_spend_max_coins: Annotated[int, Field(ge=0, le=2**40)] = 1_000_000  # 0: none
    # A gift at this price or more asks the viewer to confirm before it is sent (a Universe is
    # about $500 of coins, one tap away); a combo gift asks once per combo. 0: never ask.
    gift_confirm_min_coins: Annotated[int, Field(ge=0, le=2**40)] = 1000
    # Paid highlighted messages: the tiers, cheapest first, as JSON
    # ('[{"min_coins":100,"pinned_s":60,"colour":"blue"},…]'); a message with a gift below the
    # first is refused. Each tier costs more and pins at least as long as the one before.
    paid_message_tiers: tuple[PaidMessageTier, ...] = DEFAULT_PAID_MESSAGE_TIERS
    # Diamonds a creator earns per 100 coins a viewer spends (DESIGN.md: 1 per coin).
    creator_diamonds_per_100_coins: Annotated[int, Field(ge=1, le=100)] = 100
    # What one diamond is worth in US dollars, in millionths (5,000 = half a cent).
    diamond_value_usd_micros: Annotated[int, Field(ge=1, le=1_000_000)] = 5_000

    # Responsible spending (docs/economy.md, "Responsible spending"): a raise of a viewer's own
    # limit waits this long; a self-exclusion lasts at least a day and at most this many days.
    spending_cooling_off_s: Annotated[int, Field(ge=60, le=30 * 86_400)] = 86_400
    spending_exclusion_max_days: Annotated[int, Field(ge=1, le=3660)] = 5 * 366
    # Young adults: a viewer younger than this (or their country's own age) has this monthly
    # limit by default, which they may lower but not raise. 0 coins: no default limit.
    spending_young_adult_age: Annotated[int, Field(ge=13, le=30)] = 21
    spending_young_adult_age_by_country: dict[str, Annotated[int, Field(ge=13, le=30)]] = {}
    spending_young_adult_month_coins: Annotated[int, Field(ge=0, le=2**40)] = 50_000
    # Gentle reminders in the room: after this many minutes of gifting without a pause longer
    # than the gap (0: never), and when the month's spend passes the viewer's average month.
    spending_reminder_after_min: Annotated[int, Field(ge=0, le=24 * 60)] = 30
    spending_reminder_gap_min: Annotated[int, Field(ge=1, le=24 * 60)] = 10

    # Subscriptions (docs/economy.md, "Subscriptions"): the bounds of a creator's price, the
    # length of a period, how long a renewal the coins cannot pay is retried before the
    # subscription lapses, how often within that, and how often each node sweeps.
    subscription_min_coins: Annotated[int, Field(ge=1, le=2**40)] = 100
    subscription_max_coins: Annotated[int, Field(ge=1, le=2**40)] = 100_000
    subscription_period_s: Annotated[int, Field(ge=60, le=366 * 86_400)] = 30 * 86_400
    subscription_grace_s: Annotated[int, Field(ge=0, le=60 * 86_400)] = 3 * 86_400
    subscription_retry_s: Annotated[int, Field(ge=1, le=86_400)] = 6 * 3600
    subscription_sweep_interval_s: Annotated[float, Field(gt=0, le=3600)] = 30.0
    # Gifted subscriptions bought at once: each is three transfers of one chain (a batch).
    subscription_gift_max_count: Annotated[int, Field(ge=1, le=1000)] = 100

    # Live rooms: one frame per room per tick; a combo ends after this long without a gift.
    live_tick_ms: Annotated[int, Field(ge=10, le=5000)] = 100
    live_combo_quiet_ms: Annotated[int, Field(ge=100, le=60_000)] = 3000
    # Bytes of a room's resume ring (its last 600 frames at most): a flood of big frames must
    # not pin hundreds of megabytes per room; a resume past what is kept gets a snapshot.
    live_ring_max_bytes: Annotated[int, Field(ge=4096, le=256 * 1024**2)] = 1024**2
    # "per_event" sends every event to every viewer at once, encoded per viewer: the naive
    # fan-out, kept only as the baseline `giftwave bench fanout` measures against.
    live_fanout: Literal["tick", "per_event"] = "tick"
    # Room frames written straight to the connection (see api/room_sockets.py); off, every
    # frame goes through ASGI and the WebSocket library, as in any ASGI server (for A/B runs).
    live_direct_writes: bool = True
    # Battles last this long at least (up to 30 minutes); tests lower it to battle in seconds.
    battle_min_duration_s: Annotated[int, Field(ge=1, le=1800)] = 60
    # A battle's result stays on both rooms and the overlay this long, then goes: a newcomer
    # hours later must not meet an old result (live/room.py). Tests shorten it.
    battle_result_shown_s: Annotated[int, Field(ge=1, le=3600)] = 15

    # Trending (docs/trending.md): engagement decays by half every half-life; shares, likes and
    # new viewers count once per actor and stream per dedupe window. Weights are points per
    # coin gifted, per share, per like, per new viewer (JSON; missing ones keep their default).
    trending_half_life_s: Annotated[float, Field(ge=60, le=7 * 86_400)] = 1800.0
    trending_weights: dict[str, Annotated[float, Field(ge=0, le=1_000_000)]] = {}
    trending_dedupe_window_s: Annotated[float, Field(ge=60, le=7 * 86_400)] = 3600.0
    trending_max_items: Annotated[int, Field(ge=10, le=1_000_000)] = 50_000

    # Clips (docs/clips.md): where their files live (a path, file:///…, or an S3-compatible
    # s3://bucket/prefix?endpoint=…; default: clips/ beside the SQLite file or in the working
    # directory), where uploads and renders are written while in progress, the limits of an
    # upload, and the background jobs (watermarked downloads, cuts): workers and queued jobs.
    clip_store: str | None = None
    clip_tmp_dir: str | None = None
    clip_max_bytes: Annotated[int, Field(ge=1024, le=8 * 1024**3)] = 200 * 1024**2
    clip_max_duration_s: Annotated[float, Field(ge=1, le=3600)] = 180.0
    clip_workers: Annotated[int, Field(ge=1, le=32)] = 1
    clip_queue_max: Annotated[int, Field(ge=1, le=100_000)] = 100
    # What an uploaded (or cut) clip may be, checked from its headers before FFmpeg decodes a
    # frame: decoding is where a small file costs memory (a 750 KB H.264 file can declare
    # 16000x16000 frames: ~7.6 GB to render). Past one: 422 naming the limit (docs/clips.md).
    # Defaults: 4K (4096 px a side, 4096x2160 pixels), 120 fps, 8 streams (a phone's video,
    # sound and metadata tracks), 8-bit (10 accepts HDR phone video, at twice the memory).
    clip_max_side_px: Annotated[int, Field(ge=64, le=16_384)] = 4096
    clip_max_pixels: Annotated[int, Field(ge=4096, le=16_384 * 16_384)] = 4096 * 2160
    clip_max_fps: Annotated[float, Field(ge=1, le=1000)] = 120.0
    clip_max_streams: Annotated[int, Field(ge=1, le=64)] = 8
    clip_max_bit_depth: Annotated[int, Field(ge=8, le=12)] = 8
    # What one render may use: the download is scaled down to fit a 16:9 box this many lines
    # high (1080: 1920x1080, or 1080x1920 upright), so its cost follows the capped output; each
    # FFmpeg or ffprobe child runs with this many threads and this much address space at most
    # (RLIMIT_AS: past it the child fails, not the machine).
    clip_render_max_p: Annotated[int, Field(ge=144, le=2160)] = 1080
    clip_ffmpeg_threads: Annotated[int, Field(ge=1, le=16)] = 2
    clip_ffmpeg_memory_mib: Annotated[int, Field(ge=256, le=65_536)] = 2048
    # Uploads probed at once per process (each a bounded FFmpeg child, a few hundred MB at 4K):
    # a burst of uploads must not multiply the ceiling above. The next wait this long for a
    # turn, then are answered 503 clip_probes_busy with Retry-After.
    clip_probes_at_once: Annotated[int, Field(ge=1, le=64)] = 2
    clip_probe_wait_ms: Annotated[int, Field(ge=0, le=60_000)] = 10_000
    # Hosts a clip may be cut from (JSON list; "*.example.org" for a domain). Empty: any host
    # whose addresses are all public (clips/sources.py).
    clip_recording_hosts: tuple[str, ...] = ()

    # Outgoing webhooks (docs/webhooks.md). A failed delivery is retried after about
    # base * 1, 3, 12, 60, 360, 1080, 2160, 4320 (10 s … 12 h: ~22 h in all), then is failed.
    webhook_retry_base_ms: Annotated[int, Field(ge=1, le=600_000)] = 10_000
    webhook_max_attempts: Annotated[int, Field(ge=1, le=20)] = 9
    webhook_timeout_s: Annotated[float, Field(gt=0, le=30)] = 5.0
    # An endpoint whose every delivery failed for this long is disabled.
    webhook_disable_after_s: Annotated[int, Field(ge=1, le=90 * 86_400)] = 3 * 86_400
    # Past this many pending deliveries an endpoint's new events are dropped (and counted).
    webhook_max_pending_per_endpoint: Annotated[int, Field(ge=1, le=1_000_000)] = 10_000
    # Deliver to loopback, private, link-local and other non-public addresses: only for
    # development or a trusted network (otherwise a creator could make the server call inside).
    webhook_allow_private_addresses: bool = False

    # Web Push notices (docs/notifications.md). The VAPID private key: a P-256 key as 32 raw
    # bytes in base64url (`giftwave push keys` makes one); unset, no push is sent (the inbox
    # still fills). The subject is how a push service reaches the operator (mailto: or https:).
    vapid_private_key: SecretStr | None = None
    vapid_subject: Annotated[str, Field(pattern=r"^(mailto:|https://)\S+$")] = (
        "mailto:operator@example.org"
    )
    # At most this many pushes a day (the user's own day) per user; the inbox keeps the rest.
    push_daily_cap: Annotated[int, Field(ge=0, le=100)] = 5
    push_timeout_s: Annotated[float, Field(gt=0, le=30)] = 5.0
    push_concurrency: Annotated[int, Field(ge=1, le=256)] = 16
    push_retry_base_ms: Annotated[int, Field(ge=1, le=600_000)] = 10_000
    push_max_attempts: Annotated[int, Field(ge=1, le=20)] = 6
    push_interval_s: Annotated[float, Field(ge=0.01, le=60)] = 1.0
    # How often live streams' goals are checked for "a goal is close" (90 %).
    notify_goal_check_s: Annotated[float, Field(ge=0.05, le=600)] = 5.0
    # How often each node looks for queued fan-outs (notify/fanout.py) beside its own wake-ups.
    notify_fanout_interval_s: Annotated[float, Field(ge=0.01, le=60)] = 1.0
    # How long notices stay in inboxes and finished push jobs and fan-outs are kept before the
    # pruning loop deletes them (notify/pruning.py), and how often it runs.
    notice_retention_days: Annotated[int, Field(ge=1, le=3650)] = 90
    push_job_retention_days: Annotated[int, Field(ge=1, le=365)] = 7
    notify_prune_interval_s: Annotated[float, Field(ge=1, le=86_400)] = 3600.0
    # Push endpoints on loopback or private addresses: development and tests only.
    push_allow_private_addresses: bool = False

    # Payouts (US cents).
    payout_min_cents: Annotated[int, Field(ge=1, le=10**9)] = 5_000
    payout_daily_cap_cents: Annotated[int, Field(ge=1, le=10**10)] = 100_000
    payout_review_timeout_s: Annotated[int, Field(ge=60, le=90 * 86_400)] = 14 * 86_400
    # Auto-approval (docs/economy.md, "Who approves a payout"): a payout below this many cents
    # is approved without a person when its creator first earned at least this many days ago,
    # has no open risk flag and no diamond debt, and had no payout returned and no gift
    # reversed in the last quiet days. 0: off, every payout waits for a person.
    payout_auto_approve_below_cents: Annotated[int, Field(ge=0, le=10**9)] = 0
    payout_auto_approve_min_history_days: Annotated[int, Field(ge=0, le=3650)] = 30
    payout_auto_approve_quiet_days: Annotated[int, Field(ge=0, le=3650)] = 30
    # Fraud and abuse rules (docs/risk.md): each threshold and window of the rules engine,
    # which follows the ledger every ``risk_interval_s`` (0: the engine is off on this node;
    # any number of nodes may run it, one acts on each chunk).
    risk_interval_s: Annotated[float, Field(ge=0, le=3600)] = 1.0
    risk_card_testing_failures: Annotated[int, Field(ge=2, le=1000)] = 5
    risk_card_testing_window_s: Annotated[int, Field(ge=60, le=7 * 86_400)] = 3_600
    risk_card_testing_small_minor: Annotated[int, Field(ge=1, le=10**9)] = 1_000
    risk_funnel_accounts: Annotated[int, Field(ge=2, le=10_000)] = 5
    risk_funnel_fresh_s: Annotated[int, Field(ge=60, le=30 * 86_400)] = 3_600
    risk_funnel_share_pct: Annotated[int, Field(ge=1, le=100)] = 50
    risk_funnel_window_s: Annotated[int, Field(ge=3_600, le=90 * 86_400)] = 7 * 86_400
    risk_fast_cycle_s: Annotated[int, Field(ge=60, le=30 * 86_400)] = 3_600
    risk_chargeback_min: Annotated[int, Field(ge=1, le=10_000)] = 3
    risk_chargeback_rate_pct: Annotated[int, Field(ge=1, le=100)] = 20
    risk_chargeback_window_s: Annotated[int, Field(ge=86_400, le=365 * 86_400)] = 30 * 86_400
    risk_refund_after_gift_s: Annotated[int, Field(ge=60, le=30 * 86_400)] = 86_400
    risk_refund_after_gift_pct: Annotated[int, Field(ge=1, le=100)] = 50
    risk_refund_after_gift_disputes: bool = True
    # Off: a refund after gifting is evidence only (an audit line), not a flag (docs/risk.md).
    risk_refund_after_gift_flags: bool = False
    risk_shared_card_accounts: Annotated[int, Field(ge=2, le=10_000)] = 3
    risk_shared_card_window_s: Annotated[int, Field(ge=86_400, le=365 * 86_400)] = 30 * 86_400
    # What a flag does: a card-testing flag blocks the user's top-ups this long; a user with
    # any open flag may buy at most this many coins per 24 hours.
    risk_topup_block_s: Annotated[int, Field(ge=60, le=30 * 86_400)] = 6 * 3_600
    risk_flagged_topup_coins_per_day: Annotated[int, Field(ge=0, le=10**9)] = 5_000
    # Who pays an approved payout (docs/economy.md, "The flow of money out"): "none", the
    # operator by hand (approved is the end); "sandbox", the built-in payout provider (only
    # verified payees may ask; a transfer is made on approval and its webhooks end it);
    # "stripe", Stripe Connect Express accounts (GIFTWAVE_STRIPE_API_KEY and the Connect
    # endpoint's GIFTWAVE_STRIPE_CONNECT_WEBHOOK_SECRET).
    payout_provider: Literal["none", "sandbox", "stripe"] = "none"
    # A processing payout whose transfer got no answer is asked for again (the same key) after
    # this long, every sweep, this many times at most; then an operator must look.
    payout_transfer_retry_after_s: Annotated[int, Field(ge=1, le=86_400)] = 60
    payout_transfer_max_attempts: Annotated[int, Field(ge=1, le=1000)] = 20
    payout_sweep_interval_s: Annotated[float, Field(ge=0.05, le=3600)] = 30.0
    # What the sandbox payout provider charges the platform for each paid transfer, in the
    # transfer's currency: a fixed number of minor units plus basis points of its amount
    # (docs/economy.md, "Fees"). 0 and 0: free, as before; the demo charges 25 + 25 bps.
    payout_sandbox_fee_fixed_minor: Annotated[int, Field(ge=0, le=10**9)] = 0
    payout_sandbox_fee_bps: Annotated[int, Field(ge=0, le=10_000)] = 0
    # A payee's currency by their country (US dollars where unset), and what one US dollar
    # buys of each, in millionths (economy/fx.py): {"MX": "MXN"}, {"MXN": 17250000}.
    payout_currency_by_country: dict[str, str] = {}
    payout_fx_rate_micros: dict[str, Annotated[int, Field(ge=1, le=10**15)]] = {}

    # Sharing (docs/sharing.md): what a visitor does within this many days of opening a share
    # link is credited to the sharer; a link nobody shared again for this long stops working.
    share_attribution_days: Annotated[int, Field(ge=1, le=90)] = 7
    share_link_ttl_days: Annotated[int, Field(ge=1, le=3650)] = 90

    # Handles of a simulated audience (the demo's): every page says they are simulated.
    demo_audience: tuple[str, ...] = ()

    # Payments: "sandbox" (built in, for demos and tests) or "stripe".
    payment_provider: Literal["sandbox", "stripe"] = "sandbox"
    default_currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "USD"
    webhook_tolerance_s: Annotated[int, Field(ge=1, le=3600)] = 300
    # Unset: a random secret per process start (fine for one demo process).
    sandbox_webhook_secret: SecretStr | None = None
    stripe_api_key: SecretStr | None = None
    stripe_webhook_secret: SecretStr | None = None
    # Stripe Connect (payout_provider "stripe"): the signing secret of the Connect webhook
    # endpoint (the accounts' events: account.updated, payout.*), and of the account endpoint
    # that sends the platform's transfer.reversed to the same payouts URL. Each endpoint at
    # Stripe has its own secret, neither is Checkout's.
    stripe_connect_webhook_secret: SecretStr | None = None
    stripe_connect_transfers_webhook_secret: SecretStr | None = None
    # Only for tests that answer as Stripe from a local server.
    stripe_api_base: str | None = None
    # How long one Stripe API call may take before it counts as unanswered (the SDK retries
    # twice, with the same idempotency key): a checkout's buyer and a payout's admin wait.
    stripe_request_timeout_s: Annotated[float, Field(gt=0, le=80)] = 15.0
    # Stripe Connect's own bills to the platform (docs/economy.md, "Stripe Connect's fees"):
    # every serving process lists them this often, this many days back (Stripe bills a month
    # at the start of the next), and the ledger takes each once.
    stripe_fee_import_interval_s: Annotated[float, Field(ge=0.05, le=86_400)] = 3600.0
    stripe_fee_import_lookback_days: Annotated[int, Field(ge=1, le=400)] = 45
    # The platform's own Stripe country: a payee elsewhere is a cross-border account
    # (docs/economy.md, "Creators in another country").
    stripe_platform_country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] = "US"

    # Metrics (metrics.py; docs/operations.md "Metrics"): never public by default. A port starts
    # a separate listener that `serve` binds to metrics_host (loopback unless the operator opens
    # it); a token serves /metrics on the main port to its bearer. Neither: no metrics served.
    metrics_port: Annotated[int, Field(ge=1, le=65535)] | None = None
    metrics_host: str = "127.0.0.1"
    # At least 16 characters: the main port is public, and a short token can be guessed.
    metrics_token: SecretStr | None = None

    # Gifter levels: the lifetime coins each level 1..50 needs (JSON list, strictly
    # increasing); empty: the default curve, geometric from 1 coin to 5,000,000 (docs/economy.md).
    level_thresholds_coins: tuple[int, ...] = ()

    @field_validator("level_thresholds_coins")
    @classmethod
    def _level_curve(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        problem = None if not value else level_thresholds_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        from giftwave.db.urls import parse_database_url

        parse_database_url(value)  # raises ValueError naming what is wrong
        return value

    @model_validator(mode="after")
    def _subscription_bounds(self) -> Settings:
        if self.subscription_min_coins > self.subscription_max_coins:
            raise ValueError(
                f"subscription_min_coins ({self.subscription_min_coins}) is above"
                f" subscription_max_coins ({self.subscription_max_coins})"
            )
        return self

    @model_validator(mode="after")
    def _payout_currencies(self) -> Settings:
        for currency in [*self.payout_currency_by_country.values(), *self.payout_fx_rate_micros]:
            if not re.fullmatch(r"[A-Z]{3}", currency):
                raise ValueError(f"{currency!r} is not a currency code like EUR")
        for country, currency in self.payout_currency_by_country.items():
            if currency != "USD" and currency not in self.payout_fx_rate_micros:
                raise ValueError(
                    f"payout_currency_by_country pays {country} in {currency}, and "
                    f"payout_fx_rate_micros has no rate for {currency}"
                )
        return self

    @field_validator("paid_message_tiers")
    @classmethod
    def _tiers_rise(cls, value: tuple[PaidMessageTier, ...]) -> tuple[PaidMessageTier, ...]:
        if not 1 <= len(value) <= 10:
            raise ValueError("1 to 10 tiers")
        for lower, higher in itertools.pairwise(value):
            if higher.min_coins <= lower.min_coins or higher.pinned_s < lower.pinned_s:
                raise ValueError(
                    f"the tier of {higher.min_coins} coins must cost more than, and pin at least"
                    f" as long as, the tier of {lower.min_coins} before it"
                )
        return value

    @field_validator(
        "min_age_by_country", "payout_currency_by_country", "spending_young_adult_age_by_country"
    )
    @classmethod
    def _country_codes(cls, value: dict[str, Any]) -> dict[str, Any]:
        for country in value:
            if len(country) != 2 or not country.isascii() or not country.isupper():
                raise ValueError(f"{country!r} is not a two-letter country code like KR")
        return value

    @field_validator("trending_weights")
    @classmethod
    def _trending_signals(cls, value: dict[str, float]) -> dict[str, float]:
        for name in value:
            if name not in TRENDING_SIGNALS:
                raise ValueError(f"{name!r} is not one of {', '.join(sorted(TRENDING_SIGNALS))}")
        return value

    @field_validator("public_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return None if value is None else value.rstrip("/")

    @field_validator("vapid_private_key")
    @classmethod
    def _vapid_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            text = value.get_secret_value()
            try:
                raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            except ValueError:
                raw = b""
            if len(raw) != 32:
                raise ValueError("must be a P-256 private key: 32 bytes in base64url")
        return value

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        normalized = []
        for origin in value:
            same = normalize_origin(origin)
            if same is None:
                raise ValueError(f"{origin!r} is not an origin like https://partner.example")
            normalized.append(same)
        return tuple(normalized)

    @field_validator("allowed_hosts")
    @classmethod
    def _host_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if not _HOST_NAME_RE.fullmatch(name):
                raise ValueError(f"{name!r} is not a host name or address without a port")
        return tuple(name.lower() for name in value)

    @field_validator("metrics_token")
    @classmethod
    def _long_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters (the main port is public)")
        return value

    @field_validator("broker_url")
    @classmethod
    def _known_broker(cls, value: str) -> str:
        if not value.startswith(("memory://", "redis://", "rediss://")):
            raise ValueError("must start with memory:// or redis://")
        return value


def env_file_path(environ: Mapping[str, str]) -> Path | None:
    """The .env file giftwave reads: ``GIFTWAVE_ENV_FILE`` (which must exist), else ``./.env``
    when there is one. Variables set in the environment win over the file's."""
    named = environ.get("GIFTWAVE_ENV_FILE")
    if named:
        path = Path(named)
        if not path.is_file():
            raise ConfigError(f"GIFTWAVE_ENV_FILE: no such file: {named}")
        return path
    default = Path(".env")
    return default if default.is_file() else None


def load_settings() -> Settings:
    """Read the environment (and the .env file) once; raise ``ConfigError`` naming every bad
    variable."""
    env_file = env_file_path(os.environ)
    try:
        return Settings(_env_file=env_file)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "?"
            lines.append(f"{ENV_PREFIX}{field.upper()}: {error['msg']}")
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines)) from None
