"""A moderator hides a paid highlighted message, one call: who may is the moderation rule
(the room's creator, their moderators, admins: ``live.moderation``), the hide is kept on the
gift's row (a room rebuilt from the database leaves it out), and the gift stands: its coins
and diamonds are not touched (docs/economy.md, "Paid highlighted messages").
Blocking: a route runs it on a worker thread, then tells the nodes (``PaidMessageHidden``)."""

from __future__ import annotations

from typing import Final

from sqlalchemy import Engine, select, update

from giftwave.db.tables import gift_sends
from giftwave.errors import Code, NotFound
from giftwave.identity.users import User
from giftwave.live.events import PaidMessageHidden
from giftwave.live.moderation import require_moderator
from giftwave.live.streams import find_stream

SEND_ID_MAX_CHARS: Final = 100  # "gift:<sender id>:<key of at most 64 characters>"


def hide(db: Engine, stream_id: str, send_id: str, by: User) -> PaidMessageHidden:
    """The news that hides it on every node; hiding it again says the same (the first
    moderator to hide it is the one kept)."""
    with db.begin() as conn:
        stream = find_stream(conn, stream_id)
        if stream is None:
            raise NotFound(Code.STREAM_NOT_FOUND, "no such stream")
        require_moderator(conn, stream.creator_id, by)  # not_moderator (403)
        row = gift_sends.c
        mine = (
            row.transfer_id == send_id + ":c",  # a gift's coins leg is named after its send
            row.stream_id == stream_id,
            row.message.is_not(None),
        )
        hidden_by = conn.execute(select(row.id, row.message_hidden_by).where(*mine)).first()
        if hidden_by is None:
            raise NotFound(Code.PAID_MESSAGE_NOT_FOUND, "no paid message with this id here")
        if hidden_by.message_hidden_by is None:
            conn.execute(update(gift_sends).where(*mine).values(message_hidden_by=by.id))
    return PaidMessageHidden(send_id=send_id)
