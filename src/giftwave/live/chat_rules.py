"""What a chat line may say, and how often: one rule for the room's chat and for the message a
paid gift carries (economy/paid_messages.py), so the two can never drift apart."""

from __future__ import annotations

from typing import Final

from giftwave.errors import Code, Invalid
from giftwave.ratelimit import Rate

CHAT_MAX_CHARS: Final = 200
CHATS_PER_S: Final = 1.0
# Per user and room, across sockets and nodes: a paid message counts as a line of chat.
CHAT_RATE: Final = Rate(CHATS_PER_S, 3)


def chat_rate_key(user_id: int, stream_id: str) -> str:
    return f"chat:{user_id}:{stream_id}"


def chat_text(text: object, code: Code = Code.INVALID_COMMAND) -> str:
    """The line as it is shown (trimmed), or ``Invalid(code)``: 1..CHAT_MAX_CHARS characters,
    no control characters."""
    if not isinstance(text, str) or not 1 <= len(text.strip()) <= CHAT_MAX_CHARS:
        raise Invalid(code, f"chat text is 1..{CHAT_MAX_CHARS} characters")
    if not text.isprintable():
        raise Invalid(code, "chat text may not contain control characters")
    return text.strip()
