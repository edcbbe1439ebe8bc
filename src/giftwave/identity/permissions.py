"""Who may act by role: each rule once, each refusal one ``Forbidden`` with one code.

The domain's services call these where an action starts (going live, an overlay link, a
webhook, a clip, a payout, appointing a moderator); routes check no role themselves. A
blocked account is ``users.require_active``; what may refuse a gift (the sender is the
creator, under age, blocked, frozen, in debt, banned) is the gifting service's
(``economy/gifting.py``).
"""

from __future__ import annotations

from giftwave.errors import Code, Forbidden
from giftwave.identity.users import Role, User


def require_creator(user: User, doing: str) -> None:
    """Creators only: ``doing`` says what, for the refusal (``"go live"``)."""
    if user.role is not Role.CREATOR:
        raise Forbidden(Code.NOT_A_CREATOR, f"only creators can {doing}")


def require_creator_or_admin(user: User, doing: str) -> None:
    """Creators, and admins acting for the platform's own rooms."""
    if user.role not in (Role.CREATOR, Role.ADMIN):
        raise Forbidden(Code.NOT_A_CREATOR, f"only creators can {doing}")
