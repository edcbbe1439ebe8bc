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
the status numbers are just the meaning of each kind.
"""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    status: ClassVar[int] = 400

    def __init__(self, code: str, detail: str, **extra: Any) -> None:
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

    def __init__(self, code: str, detail: str, retry_after_s: float, **extra: Any) -> None:
        super().__init__(code, detail, **extra)
        self.retry_after_s = retry_after_s


class Unavailable(DomainError):
    status = 503

    def __init__(
        self, code: str, detail: str, retry_after_s: float | None = None, **extra: Any
    ) -> None:
        super().__init__(code, detail, **extra)
        self.retry_after_s = retry_after_s  # None: no Retry-After (no idea when)
