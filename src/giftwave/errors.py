"""Domain errors: a user's mistake, said with a stable ``code`` a client can switch on.

    DomainError
    ├── Invalid           422  the request is well-formed but not acceptable
    ├── Unauthorized      401  no valid credentials
    ├── Forbidden         403  valid credentials, not allowed (wrong role, blocked, under age)
    ├── NotFound          404
    ├── Conflict          409  an idempotency key reused with other fields, a state clash
    ├── PaymentRequired   402  not enough coins or diamonds
    ├── RateLimited       429  too many, too fast; ``retry_after_s`` says when to come back
    └── Unavailable       503  a dependency (the payment provider) cannot be reached, or the
                               server is too busy; ``retry_after_s`` when it knows when

The API turns each into RFC 9457 problem+json; the domain never imports the web framework,
the status numbers are just the meaning of each kind. Every ``code`` any answer carries (these
errors', the API's own, a ledger outcome a route answers with, a socket command's refusal) is
a member of ``Code``, which /openapi.json lists: the values are an API, never renamed.
"""

from __future__ import annotations

import enum
from typing import Any, ClassVar


class Code(enum.StrEnum):
    """Every stable problem ``code``, in alphabetical order (the wire value is the value)."""

    ACCOUNT_BLOCKED = "account_blocked"
    ACCOUNT_CONFLICT = "account_conflict"
    ACCOUNT_FROZEN = "account_frozen"
    ACCOUNT_IN_DEBT = "account_in_debt"
    ACCOUNT_NOT_FOUND = "account_not_found"
    ACCOUNTS_MUST_BE_DIFFERENT = "accounts_must_be_different"
    ADMIN_API_DISABLED = "admin_api_disabled"
    ADMIN_REQUIRED = "admin_required"
    ALREADY_LIVE = "already_live"
    ALREADY_REGISTERED = "already_registered"
    AMOUNT_MUST_BE_POSITIVE = "amount_must_be_positive"
    AMOUNT_NOT_CHARGEABLE = "amount_not_chargeable"
    AMOUNT_TOO_LARGE = "amount_too_large"
    API_KEY_NOT_FOUND = "api_key_not_found"
    ASSET_MISMATCH = "asset_mismatch"
    BAD_SIGNATURE = "bad_signature"
    BANNED = "banned"
    BATTLE_IN_PROGRESS = "battle_in_progress"
    BATTLE_NOT_FOUND = "battle_not_found"
    BATTLE_NOT_PENDING = "battle_not_pending"
    BUSY = "busy"
    CANNOT_BAN_CREATOR = "cannot_ban_creator"
    CANNOT_BAN_MODERATOR = "cannot_ban_moderator"
    CANNOT_BATTLE_SELF = "cannot_battle_self"
    CANNOT_FOLLOW_SELF = "cannot_follow_self"
    CANNOT_GIFT_SELF = "cannot_gift_self"
    CANNOT_MODERATE_SELF = "cannot_moderate_self"
    CANNOT_REPORT_SELF = "cannot_report_self"
    CANNOT_SUBSCRIBE_SELF = "cannot_subscribe_self"
    CHAT_MODE_NEEDS_CLUB = "chat_mode_needs_club"
    CHECKOUT_CLOSED = "checkout_closed"
    CHECKOUT_NOT_FOUND = "checkout_not_found"
    CLIP_BIT_DEPTH_TOO_HIGH = "clip_bit_depth_too_high"
    CLIP_CODEC_NOT_ALLOWED = "clip_codec_not_allowed"
    CLIP_FRAME_RATE_TOO_HIGH = "clip_frame_rate_too_high"
    CLIP_NOT_FOUND = "clip_not_found"
    CLIP_NOT_READY = "clip_not_ready"
    CLIP_PIXEL_FORMAT_NOT_ALLOWED = "clip_pixel_format_not_allowed"
    CLIP_PROBES_BUSY = "clip_probes_busy"
    CLIP_STORE_UNAVAILABLE = "clip_store_unavailable"
    CLIP_TOO_LARGE = "clip_too_large"
    CLIP_TOO_LARGE_DIMENSIONS = "clip_too_large_dimensions"
    CLIP_TOO_LONG = "clip_too_long"
    CLIP_TOO_MANY_STREAMS = "clip_too_many_streams"
    CLUB_ENTRY_NEEDS_STREAM = "club_entry_needs_stream"
    CLUB_MEMBER_NOT_FOUND = "club_member_not_found"
    CLUB_NOT_FOUND = "club_not_found"
    CREATOR_NOT_FOUND = "creator_not_found"
    CREATOR_TOO_YOUNG = "creator_too_young"
    CREATOR_UNAVAILABLE = "creator_unavailable"
    CREATOR_UNDER_AGE = "creator_under_age"
    CREDIT_ACCOUNT_FROZEN = "credit_account_frozen"
    CREDIT_ACCOUNT_NOT_FOUND = "credit_account_not_found"
    CROSS_BORDER_UNSUPPORTED = "cross_border_unsupported"
    CSRF_FAILED = "csrf_failed"
    DAILY_SPEND_LIMIT = "daily_spend_limit"
    DATABASE_UNAVAILABLE = "database_unavailable"
    DEBIT_ACCOUNT_FROZEN = "debit_account_frozen"
    DEBIT_ACCOUNT_NOT_FOUND = "debit_account_not_found"
    DIAMOND_DEBT = "diamond_debt"
    DOWNLOAD_NOT_FOUND = "download_not_found"
    DOWNLOAD_NOT_READY = "download_not_ready"
    DOWNLOADS_DISABLED = "downloads_disabled"
    DRAINING = "draining"
    EMAIL_TAKEN = "email_taken"
    EMPTY_QUERY = "empty_query"
    EXCEEDS_DEBIT_LIMIT = "exceeds_debit_limit"
    EXCEEDS_PENDING_AMOUNT = "exceeds_pending_amount"
    EXTERNAL_ID_TAKEN = "external_id_taken"
    FFMPEG_UNAVAILABLE = "ffmpeg_unavailable"
    FOLLOW_RATE_LIMITED = "follow_rate_limited"
    FOLLOWING_LIMIT = "following_limit"
    GIFT_NOT_FOUND = "gift_not_found"
    GIFT_NOT_ON_SALE = "gift_not_on_sale"
    GIFT_RATE_LIMITED = "gift_rate_limited"
    GIFT_REFUSED = "gift_refused"
    GIFT_SEND_NOT_FOUND = "gift_send_not_found"
    HANDLE_TAKEN = "handle_taken"
    HTTP_ERROR = "http_error"
    ID_REUSED_WITH_DIFFERENT_FIELDS = "id_reused_with_different_fields"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    INCOMPLETE_GIFT = "incomplete_gift"
    INSUFFICIENT_COINS = "insufficient_coins"
    INSUFFICIENT_DIAMONDS = "insufficient_diamonds"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    INTERNAL_ERROR = "internal_error"
    INVALID_ACCOUNT = "invalid_account"
    INVALID_BATTLE_DURATION = "invalid_battle_duration"
    INVALID_BATTLE_ID = "invalid_battle_id"
    INVALID_BIRTH_DATE = "invalid_birth_date"
    INVALID_CHANNEL = "invalid_channel"
    INVALID_CLUB_LEVEL = "invalid_club_level"
    INVALID_CLUB_NAME = "invalid_club_name"
    INVALID_CODE = "invalid_code"
    INVALID_COIN_AMOUNT = "invalid_coin_amount"
    INVALID_COMMAND = "invalid_command"
    INVALID_COUNT = "invalid_count"
    INVALID_COUNTRY = "invalid_country"
    INVALID_CREDENTIALS = "invalid_credentials"
    INVALID_CURRENCY = "invalid_currency"
    INVALID_DEBIT_LIMIT = "invalid_debit_limit"
    INVALID_EMAIL = "invalid_email"
    INVALID_GIFT_ID = "invalid_gift_id"
    INVALID_GOAL = "invalid_goal"
    INVALID_HANDLE = "invalid_handle"
    INVALID_ID = "invalid_id"
    INVALID_IDEMPOTENCY_KEY = "invalid_idempotency_key"
    INVALID_IMAGE = "invalid_image"
    INVALID_INTEGRATION = "invalid_integration"
    INVALID_KIND = "invalid_kind"
    INVALID_LANGUAGE = "invalid_language"
    INVALID_MESSAGE = "invalid_message"
    INVALID_NAMES = "invalid_names"
    INVALID_PACKAGE = "invalid_package"
    INVALID_PERIOD = "invalid_period"
    INVALID_PLAYBACK_URL = "invalid_playback_url"
    INVALID_PRICE = "invalid_price"
    INVALID_PUSH_SUBSCRIPTION = "invalid_push_subscription"
    INVALID_RANGE = "invalid_range"
    INVALID_REACTION = "invalid_reaction"
    INVALID_REASON = "invalid_reason"
    INVALID_RECORDING_URL = "invalid_recording_url"
    INVALID_REQUEST = "invalid_request"
    INVALID_SCOPE = "invalid_scope"
    INVALID_SELF_EXCLUSION = "invalid_self_exclusion"
    INVALID_SPENDING_LIMIT = "invalid_spending_limit"
    INVALID_TARGET_KIND = "invalid_target_kind"
    INVALID_TIME_ZONE = "invalid_time_zone"
    INVALID_TIMEOUT = "invalid_timeout"
    INVALID_TITLE = "invalid_title"
    INVALID_UNSUBSCRIBE_TOKEN = "invalid_unsubscribe_token"
    INVALID_UPLOAD = "invalid_upload"
    INVALID_VALUE = "invalid_value"
    INVALID_WEBHOOK_URL = "invalid_webhook_url"
    INVALID_WINDOW = "invalid_window"
    INVITATION_EXPIRED = "invitation_expired"
    LEDGER_BUSY = "ledger_busy"
    LEDGER_ERROR = "ledger_error"
    LEDGER_UNAVAILABLE = "ledger_unavailable"
    LEVEL_HIDDEN = "level_hidden"
    LINKED_EVENT_CHAIN_OPEN = "linked_event_chain_open"
    LINKED_EVENT_FAILED = "linked_event_failed"
    LOGIN_REQUIRED = "login_required"
    MALFORMED_FRAME = "malformed_frame"
    MALFORMED_SIGNATURE = "malformed_signature"
    MALFORMED_WEBHOOK = "malformed_webhook"
    MEMBERS_ONLY_CHAT = "members_only_chat"
    MESSAGE_NOT_FOUND = "message_not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    METRICS_TOKEN = "metrics_token"
    MISSING_SCOPE = "missing_scope"
    MISSING_SIGNATURE = "missing_signature"
    MODERATOR_LIMIT = "moderator_limit"
    MUTED = "muted"
    NO_BATTLE = "no_battle"
    NO_PACKAGES = "no_packages"
    NO_PAYOUT_PROVIDER = "no_payout_provider"
    NO_SUPPORTERS = "no_supporters"
    NOT_A_CREATOR = "not_a_creator"
    NOT_A_SUPPORTER = "not_a_supporter"
    NOT_A_VIDEO = "not_a_video"
    NOT_ENOUGH_GIFT_RECIPIENTS = "not_enough_gift_recipients"
    NOT_FOUND = "not_found"
    NOT_IN_BATTLE = "not_in_battle"
    NOT_INVITED = "not_invited"
    NOT_MODERATOR = "not_moderator"
    NOT_PAID = "not_paid"
    NOT_READY = "not_ready"
    NOT_YOUR_CLIP = "not_your_clip"
    NOT_YOUR_STREAM = "not_your_stream"
    NOTHING_TO_CHANGE = "nothing_to_change"
    NOTICE_NOT_FOUND = "notice_not_found"
    NOTIFY_RATE_LIMITED = "notify_rate_limited"
    NOTIFY_SELF = "notify_self"
    ON_BEHALF_REQUIRED = "on_behalf_required"
    ONBOARDING_NOT_FOUND = "onboarding_not_found"
    ORDER_NOT_FOUND = "order_not_found"
    ORDER_NOT_OPEN = "order_not_open"
    ORIGIN_NOT_ALLOWED = "origin_not_allowed"
    OWN_PAYOUT = "own_payout"
    PACKAGE_NOT_FOUND = "package_not_found"
    PACKAGE_OR_COINS = "package_or_coins"
    PAID_MESSAGE_BELOW_TIER = "paid_message_below_tier"
    PAID_MESSAGE_NOT_FOUND = "paid_message_not_found"
    PAYEE_NOT_READY = "payee_not_ready"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    PAYMENT_ERROR = "payment_error"
    PAYOUT_BELOW_MINIMUM = "payout_below_minimum"
    PAYOUT_DAILY_CAP = "payout_daily_cap"
    PAYOUT_IN_PROGRESS = "payout_in_progress"
    PAYOUT_NOT_FOUND = "payout_not_found"
    PAYOUT_NOT_PENDING = "payout_not_pending"
    PAYOUT_REFUSED = "payout_refused"
    PAYOUTS_DISABLED = "payouts_disabled"
    PENDING_ID_MUST_BE_BLANK = "pending_id_must_be_blank"
    PENDING_ID_REQUIRED = "pending_id_required"
    PENDING_TRANSFER_ALREADY_POSTED = "pending_transfer_already_posted"
    PENDING_TRANSFER_ALREADY_VOIDED = "pending_transfer_already_voided"
    PENDING_TRANSFER_EXPIRED = "pending_transfer_expired"
    PENDING_TRANSFER_HAS_DIFFERENT_ACCOUNTS = "pending_transfer_has_different_accounts"
    PENDING_TRANSFER_HAS_DIFFERENT_CODE = "pending_transfer_has_different_code"
    PENDING_TRANSFER_NOT_FOUND = "pending_transfer_not_found"
    PENDING_TRANSFER_NOT_PENDING = "pending_transfer_not_pending"
    PRICE_NOT_CHARGEABLE = "price_not_chargeable"
    PROVIDER_TIMEOUT = "provider_timeout"
    PROVIDER_UNAVAILABLE = "provider_unavailable"
    PUSH_ENDPOINT_NOT_ALLOWED = "push_endpoint_not_allowed"
    RANGE_NOT_SATISFIABLE = "range_not_satisfiable"
    RATE_LIMITED = "rate_limited"
    RECORDING_HOST_UNKNOWN = "recording_host_unknown"
    RECORDING_URL_NOT_ALLOWED = "recording_url_not_allowed"
    RENDER_QUEUE_FULL = "render_queue_full"
    REVERSAL_REFUSED = "reversal_refused"
    REVERSED_TRANSFER_NOT_FOUND = "reversed_transfer_not_found"
    RISK_FLAG_CLOSED = "risk_flag_closed"
    RISK_FLAG_NOT_FOUND = "risk_flag_not_found"
    SANDBOX_BUSY = "sandbox_busy"
    SELF_EXCLUDED = "self_excluded"
    SELF_EXCLUSION_CANNOT_SHORTEN = "self_exclusion_cannot_shorten"
    SHARE_NOT_FOUND = "share_not_found"
    SHARE_RATE_LIMITED = "share_rate_limited"
    SHUTTING_DOWN = "shutting_down"
    SPENDING_LIMIT_RAISE_PENDING = "spending_limit_raise_pending"
    SPENDING_LIMIT_REACHED = "spending_limit_reached"
    STALE_WEBHOOK = "stale_webhook"
    STREAM_NOT_FOUND = "stream_not_found"
    STREAM_NOT_LIVE = "stream_not_live"
    STREAM_STILL_LIVE = "stream_still_live"
    SUBSCRIBERS_ONLY_CHAT = "subscribers_only_chat"
    SUBSCRIPTION_NOT_FOUND = "subscription_not_found"
    SUBSCRIPTION_PRICE_OUT_OF_BOUNDS = "subscription_price_out_of_bounds"
    SUBSCRIPTION_RATE_LIMITED = "subscription_rate_limited"
    SUBSCRIPTIONS_NOT_OFFERED = "subscriptions_not_offered"
    THANKS_ALREADY_SENT = "thanks_already_sent"
    THANKS_NOT_FOUND = "thanks_not_found"
    THANKS_RATE_LIMITED = "thanks_rate_limited"
    TIMEOUT_REQUIRES_PENDING = "timeout_requires_pending"
    TOO_MANY_ATTEMPTS = "too_many_attempts"
    TOO_MANY_PUSH_SUBSCRIPTIONS = "too_many_push_subscriptions"
    TOO_MANY_RECIPIENTS = "too_many_recipients"
    TOO_MANY_TICKETS = "too_many_tickets"
    TOO_MANY_TRANSFERS = "too_many_transfers"
    TOPUP_LIMIT_REACHED = "topup_limit_reached"
    TOPUPS_BLOCKED = "topups_blocked"
    TRANSFER_REFUSED = "transfer_refused"
    UNAUTHORIZED = "unauthorized"
    UNDER_AGE = "under_age"
    UNKNOWN_ACCOUNT = "unknown_account"
    UNKNOWN_COMMAND = "unknown_command"
    UNKNOWN_EVENT = "unknown_event"
    UNKNOWN_HOST = "unknown_host"
    UNKNOWN_PROVIDER = "unknown_provider"
    UNKNOWN_TABLE = "unknown_table"
    UNKNOWN_TRANSFER = "unknown_transfer"
    UNKNOWN_WEBHOOK_EVENT = "unknown_webhook_event"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    USER_NOT_FOUND = "user_not_found"
    USER_REQUIRED = "user_required"
    VIDEO_MISSING = "video_missing"
    VOID_AMOUNT_MUST_MATCH_PENDING = "void_amount_must_match_pending"
    WEBHOOK_BACKLOG_FULL = "webhook_backlog_full"
    WEBHOOK_DISABLED = "webhook_disabled"
    WEBHOOK_LIMIT_REACHED = "webhook_limit_reached"
    WEBHOOK_NOT_FOUND = "webhook_not_found"
    WEBHOOK_URL_NOT_ALLOWED = "webhook_url_not_allowed"
    YOUNG_ADULT_LIMIT = "young_adult_limit"


class DomainError(Exception):
    status: ClassVar[int] = 400

    def __init__(self, code: Code, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.extra = extra


class Invalid(DomainError):
    status = 422


class Unauthorized(DomainError):
    status = 401


class Forbidden(DomainError):
    status = 403


class NotFound(DomainError):
    status = 404


class Conflict(DomainError):
    status = 409


class PaymentRequired(DomainError):
    status = 402


class RateLimited(DomainError):
    status = 429

    def __init__(self, code: Code, detail: str, retry_after_s: float, **extra: Any) -> None:
        super().__init__(code, detail, **extra)
        self.retry_after_s = retry_after_s


class Unavailable(DomainError):
    status = 503

    def __init__(
        self, code: Code, detail: str, retry_after_s: float | None = None, **extra: Any
    ) -> None:
        super().__init__(code, detail, **extra)
        self.retry_after_s = retry_after_s  # None: no Retry-After (no idea when)
