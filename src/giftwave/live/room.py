"""A live room's state: viewers, combos, top gifters, totals, likes, goal, battle. Fed only
with committed gifts (bill first, then broadcast), each counted once however often it is
broadcast (``live.seen``); asked once per tick for what is new.

The room also keeps its last ``RECENT_GIFTS`` finished gifts (final combos and single gifts),
ordered by their time then combo id, so that every node holding the same events shows the same
list whatever its tick timing: a viewer who resumes on another node sees there what it missed.
"""

from __future__ import annotations

import itertools
from bisect import insort
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, TypeVar

import msgspec

from giftwave.live.battles import Battle, BattleStatus
from giftwave.live.combos import ComboTracker
from giftwave.live.events import (
    BattleShown,
    ChatDeletedShown,
    ChatLine,
    ChatShown,
    ClubBadge,
    GiftCommitted,
    GiftReversalCommitted,
    GiftReversedShown,
    GiftShown,
    GoalReachedShown,
    GoalShown,
    JoinedUser,
    JoinsShown,
    LeaderboardShown,
    LevelReached,
    LevelUpShown,
    LikersShown,
    LikesShown,
    MutesShown,
    NoBattle,
    NoGoal,
    PaidMessage,
    PaidMessageHiddenShown,
    PaidMessagePosted,
    PaidMessageShown,
    Ranked,
    RankedLiker,
    RoomEvent,
    Snapshot,
    StreamEndedShown,
    SubsGifted,
    SubsGiftedShown,
    Thanked,
    ThanksHiddenShown,
    ThanksPosted,
    ThanksShown,
    ViewersShown,
)
from giftwave.live.goals import Goal, GoalKind
from giftwave.live.leaderboard import Leaderboard
from giftwave.live.seen import SeenIds

# A gifter's level badge as this node knows it (None: none shown, or not known yet): a cache,
# never a query (social/level_badges.py).
LevelLookup = Callable[[int], int | None]

K = TypeVar("K")
V = TypeVar("V")

LEADERBOARD_SIZE: Final = 10
CHAT_HISTORY: Final = 50
RECENT_GIFTS: Final = 50
MAX_MUTES: Final = 10_000  # per room; the oldest mute is forgotten first (~1.5 MB at most)
# Chat messages a moderator may delete, or a viewer report: the newest this many, kept whole
# (a report keeps the line as it was shown; 1,000 lines of at most 200 characters is a few
# hundred kB). A delete of any other id, or of one already deleted, changes nothing and is not
# broadcast: a flood of deletes costs no frame.
CHAT_IDS_KEPT: Final = 1_000
# A battle's result stays on the rooms (and the overlay) this long after the battle ended,
# then goes: the next viewer does not meet an old result (GIFTWAVE_BATTLE_RESULT_SHOWN_S).
BATTLE_RESULT_US: Final = 15_000_000
# Moderation said per tick: deletes and mutes each in one compact event, duplicates dropped,
# at most this many ids each (the rest wait for the next ticks, bounded by the two above).
MODERATION_PER_TICK: Final = 100
MAX_SUBS_GIFTED_SEEN: Final = 256  # gifted-subscription purchases a room remembers announcing
MAX_SUB_MONTHS_KNOWN: Final = 10_000  # people whose subscriber badge a room remembers
JOINS_NAMED_PER_TICK: Final = 5  # a big room says "ana, bo and 312 others joined"
# A big room's count changes every tick; saying so every tick would be a frame per tick to
# every viewer for nothing anyone reads that fast.
VIEWERS_EVERY_US: Final = 1_000_000
# The board and the totals change with every gift; twice a second reads as live, and in a gift
# rain it keeps their ~600 bytes out of most frames.
LEADERBOARD_EVERY_US: Final = 500_000
# Paid messages pinned at once in a room (the oldest goes first past it), and hides remembered
# (so that a late or repeated ``paid_message`` never pins a hidden one again).
PAID_PINNED_MAX: Final = 100
PAID_HIDDEN_KEPT: Final = 1_000


@dataclass(frozen=True, slots=True)
class SeedGift:
    """One committed gift send, as a room replays it to rebuild its combos."""

    send_id: str
    sender_id: int
    sender_handle: str
    gift_id: str
    count: int
    coins: int
    comboable: bool
    at_us: int


@dataclass(frozen=True, slots=True)
class SeedGifter:
    user_id: int
    handle: str
    coins: int
    last_at_us: int  # their latest gift: who reached a total first wins a tie


@dataclass(frozen=True, slots=True)
class RoomSeed:
    """What a room rebuilt from the database starts with: the committed, unreversed gifts'
    totals and top gifters, the latest sends (to rebuild combos and the recent gifts), the
    sends it must not count again (and of those, the reversed ones, whose reversal it must
    not apply again), and the goal and battle with the coins toward each."""

    goal: Goal | None = None
    goal_progress: int = 0
    battle: Battle | None = None
    battle_scores: tuple[int, int] = (0, 0)
    coins: int = 0
    diamonds: int = 0
    gifters: tuple[SeedGifter, ...] = ()  # earliest latest gift first
    recent: tuple[SeedGift, ...] = ()  # oldest first
    seen: tuple[tuple[str, int], ...] = ()  # (send_id, at_us) already counted, oldest first
    seen_floor_us: int = -1  # and everything recorded at or before this
    # The same for the battle's points: gifts to either side that already scored.
    seen_points: tuple[tuple[str, int], ...] = ()
    seen_points_floor_us: int = -1
    # (send_id, at_us) of reversed gifts, oldest first: left out of the totals above already.
    reversed: tuple[tuple[str, int], ...] = ()
    reversed_points: tuple[tuple[str, int], ...] = ()  # of the battle's, the same
    # Paid messages still pinned, not hidden, oldest first.
    paid_messages: tuple[PaidMessage, ...] = ()
    # The creator's thank-you for their stream before this one, not hidden (live/thanks.py).
    thanks: Thanked | None = None


def _recent_order(event: GiftShown) -> tuple[int, str]:
    return event.at_us, event.combo_id


def _take(pending: dict[K, V], most: int) -> list[tuple[K, V]]:
    """The first ``most`` entries of ``pending``, in order, removed from it."""
    taken = list(itertools.islice(pending.items(), most))
    for key, _ in taken:
        del pending[key]
    return taken


class Room:
    def __init__(
        self,
        stream_id: str,
        *,
        combo_quiet_us: int,
        combo_settle_us: int = 0,
        battle_result_us: int = BATTLE_RESULT_US,
        levels: LevelLookup | None = None,
    ) -> None:
        self.stream_id = stream_id
        self._levels = levels
        self.viewers = 0
        self.coins = 0
        self.diamonds = 0
        self.likes = 0
        self.ended = False
        self._combo_quiet_us = combo_quiet_us
        self._combo_settle_us = combo_settle_us
        self._combos = ComboTracker(quiet_window_us=combo_quiet_us, settle_us=combo_settle_us)
        self._seen = SeenIds()
        self._seen_points = SeenIds()
        # Reversals applied (or found applied by the seed): each is applied once.
        self._reversed = SeenIds()
        self._reversed_points = SeenIds()
        self._recent: list[GiftShown] = []  # final gift events, by _recent_order
        self._leaderboard = Leaderboard(Ranked)
        self._likes_pending = 0
        self._likers = Leaderboard(RankedLiker)
        self._likers_changed = False
        self._chat: list[ChatLine] = []
        self._chat_ids: dict[str, ChatLine] = {}  # the newest CHAT_IDS_KEPT, oldest first
        self._deleted: dict[str, None] = {}  # deletes not yet said, in order
        self._mutes: dict[int, int] = {}  # mutes not yet said: user → until_us
        self._news: list[RoomEvent] = []
        self._sub_months: dict[int, int] = {}  # user → months their last badge showed (bounded)
        self._subs_gifted: dict[str, None] = {}  # purchases announced, oldest first (bounded)
        self._leaderboard_changed = False
        self._viewers_changed = False
        self._viewers_said_at_us = -VIEWERS_EVERY_US
        self._leaderboard_said_at_us = -LEADERBOARD_EVERY_US
        self._muted_until: dict[int, int] = {}
        self._joined: list[JoinedUser] = []
        self._joined_others = 0
        self.goal: Goal | None = None
        self.goal_progress = 0
        self._goal_changed = False
        # The stream's newest battle in any state; a result stays up ``battle_result_us``.
        self.battle: Battle | None = None
        self.battle_scores = (0, 0)
        self._battle_changed = False
        self._battle_result_us = battle_result_us
        self._battle_gone_id = 0  # its result was shown and taken down: never shown again
        self._paid: dict[str, PaidMessage] = {}  # pinned, by send id, oldest first
        self._paid_hidden: dict[str, None] = {}  # the newest PAID_HIDDEN_KEPT hidden ids
        # The thank-you for the creator's last stream; the streams whose thank-you was hidden.
        self._thanks: Thanked | None = None
        self._thanks_hidden: set[str] = set()

    def gift(self, g: GiftCommitted) -> None:
        """A committed gift (news of it may come more than once: counted once)."""
        if not self._seen.first(g.send_id, g.at_us):
            return  # broadcast again (a retry, a republish): counted the first time
        self._combos.add(
            combo_id=g.send_id,
            sender_id=g.sender_id,
            sender_handle=g.sender,
            gift_id=g.gift_id,
            count=g.count,
            coins=g.coins,
            comboable=g.comboable,
            at_us=g.at_us,
        )
        self._leaderboard.add(g.sender_id, g.sender, g.coins)
        self.coins += g.coins
        self.diamonds += g.diamonds
        self._leaderboard_changed = True
        goal = self.goal
        if (
            goal is not None
            and goal.kind is GoalKind.COINS
            and goal.gift_id in (None, g.gift_id)
            and g.at_us >= goal.created_at_us
        ):
            self._advance_goal(g.coins)

    def gift_reversed(self, r: GiftReversalCommitted) -> None:
        """An operator reversed a committed gift (recorded at ``at_us``): out of the totals,
        the board, the goal and its combo, once. A gift this room never counted changes
        nothing, and will never count (its ``gift`` event may come late); a second event for
        the reversal, or one the seed already left out, changes nothing."""
        send_id, sender_id, gift_id = r.send_id, r.sender_id, r.gift_id
        count, coins, diamonds, at_us = r.count, r.coins, r.diamonds, r.at_us
        if not self._reversed.first(send_id, at_us):
            return
        if self._seen.first(send_id, at_us):
            return  # never counted here
        self._leaderboard.remove(sender_id, coins)
        self.coins -= coins
        self.diamonds -= diamonds
        self._leaderboard_changed = True
        goal = self.goal
        if (
            goal is not None
            and goal.kind is GoalKind.COINS
            and goal.gift_id in (None, gift_id)
            and at_us >= goal.created_at_us
        ):
            self._advance_goal(-coins)  # "reached" is progress >= target: it may turn false
        combo_id, combo_count = self._uncombo(send_id, sender_id, gift_id, count, coins, at_us)
        self._news.append(
            GiftReversedShown(
                send_id=send_id,
                sender_id=sender_id,
                gift_id=gift_id,
                count=count,
                coins=coins,
                at_us=at_us,
                combo_id=combo_id,
                combo_count=combo_count,
            )
        )

    def _uncombo(
        self, send_id: str, sender_id: int, gift_id: str, count: int, coins: int, at_us: int
    ) -> tuple[str | None, int | None]:
        """The reversed gift out of its combo, open or among the recent gifts: the combo's id
        and count left (0: gone), or (None, None) when the room no longer shows it."""
        grown = self._combos.remove(
            sender_id=sender_id, gift_id=gift_id, count=count, coins=coins, at_us=at_us
        )
        if grown is not None:
            return grown
        for i, event in enumerate(self._recent):
            if event.sender_id != sender_id or event.gift_id != gift_id:
                continue
            started = self._combos.started_at_us(event.combo_id)
            if event.combo_id == send_id or (
                started is not None and started <= at_us <= event.at_us
            ):
                left = event.count - count
                if left <= 0:
                    del self._recent[i]
                else:  # events are immutable: frames already sent may hold the old one
                    self._recent[i] = msgspec.structs.replace(
                        event, count=left, coins=event.coins - coins
                    )
                return event.combo_id, max(0, left)
        return None, None

    def like(self, count: int, user_id: int | None = None, handle: str = "") -> None:
        self.likes += count
        self._likes_pending += count
        if user_id is not None:  # exact per-user totals, for the likes board
            self._likers.add(user_id, handle, count)
            self._likers_changed = True
        if self.goal is not None and self.goal.kind is GoalKind.LIKES:
            self._advance_goal(count)

    def set_goal(self, goal: Goal | None, progress: int = 0) -> None:
        """A new goal (or none); ``progress`` already made toward it (a rebuilt room)."""
        self.goal = goal
        self.goal_progress = progress
        self._goal_changed = True

    def restore(self, seed: RoomSeed, now_us: int) -> None:
        """The gifts' totals, top gifters, combos, goal, battle and pinned paid messages as the
        database has them (a
        restarted process; a broker that may have lost events). Likes, chat and mutes stay as
        they are: the database does not keep them."""
        self.coins, self.diamonds = seed.coins, seed.diamonds
        self._leaderboard.restore((g.user_id, g.handle, g.coins) for g in seed.gifters)
        self._leaderboard_changed = True
        self._seen.reset(seed.seen, seed.seen_floor_us)
        self._seen_points.reset(seed.seen_points, seed.seen_points_floor_us)
        self._reversed.reset(seed.reversed)
        self._reversed_points.reset(seed.reversed_points)
        # The seed's totals hold every reversal before it: one not yet said (the broker's
        # history, applied just before) is history now, not news.
        self._news = [e for e in self._news if not isinstance(e, GiftReversedShown)]
        combos = ComboTracker(quiet_window_us=self._combo_quiet_us, settle_us=self._combo_settle_us)
        for g in seed.recent:
            combos.add(
                combo_id=g.send_id,
                sender_id=g.sender_id,
                sender_handle=g.sender_handle,
                gift_id=g.gift_id,
                count=g.count,
                coins=g.coins,
                comboable=g.comboable,
                at_us=g.at_us,
            )
        self._combos = combos
        # Combos that ended before now are history (recent gifts), not news; open ones go on.
        self._recent = []
        self._remember(combos.drain(now_us))
        current = self.goal
        if seed.goal is None:
            if current is not None:
                self.set_goal(None)
        elif current is None or current.id != seed.goal.id or seed.goal.kind is GoalKind.COINS:
            self.set_goal(seed.goal, seed.goal_progress)
        # else the same likes goal: likes are not stored, the room's own count is all there is
        if seed.battle is not None and self._result_over(seed.battle, now_us):
            self._battle_gone_id = max(self._battle_gone_id, seed.battle.id)
        elif seed.battle is not None:
            self.set_battle(seed.battle, seed.battle_scores)
        self._paid = {
            m.send_id: m for m in seed.paid_messages if m.send_id not in self._paid_hidden
        }
        thanks = seed.thanks
        self._thanks = None if thanks is None or thanks.stream_id in self._thanks_hidden else thanks

    def _remember(self, events: Sequence[RoomEvent]) -> None:
        for event in events:
            if isinstance(event, GiftShown) and event.final:  # combo_counts are growth
                insort(self._recent, event, key=_recent_order)
        del self._recent[:-RECENT_GIFTS]

    def set_battle(self, battle: Battle, scores: tuple[int, int] | None = None) -> None:
        """A battle's new state (invited, started, cut short, declined, expired); ``scores``
        already made toward it, for a rebuilt room. The result comes by ``end_battle``."""
        current = self.battle
        same = current is not None and current.id == battle.id
        if current is not None and (battle.id < current.id or (same and current.status.over)):
            return  # late news: this room has moved on, and an outcome is never undone
        if battle.id <= self._battle_gone_id:
            return  # its result was taken down already
        if scores is None:
            scores = self.battle_scores if same else (battle.score_a, battle.score_b)
        self.battle = battle
        self.battle_scores = scores
        self._battle_changed = True

    def battle_points(
        self, battle_id: int, side: str, points: int, at_us: int, send_id: str | None = None
    ) -> None:
        """A committed gift to one side, if it landed within the battle's time (once per
        ``send_id``: points are broadcast at least once, like gifts)."""
        battle = self.battle
        if battle is None or battle.id != battle_id or not battle.counts_at(at_us):
            return
        if send_id is not None and not self._seen_points.first(send_id, at_us):
            return
        score_a, score_b = self.battle_scores
        if side == "a":
            self.battle_scores = (score_a + points, score_b)
        elif side == "b":
            self.battle_scores = (score_a, score_b + points)
        else:
            return
        self._battle_changed = True

    def battle_points_reversed(
        self, battle_id: int, side: str, points: int, at_us: int, send_id: str
    ) -> None:
        """A reversed gift's points out of the live score, once, if they counted here. Of an
        ended battle, the corrected result comes whole (``correct_result``)."""
        battle = self.battle
        if battle is None or battle.id != battle_id or not battle.counts_at(at_us):
            return
        if side not in ("a", "b") or not self._reversed_points.first(send_id, at_us):
            return
        if self._seen_points.first(send_id, at_us):
            return  # never scored here, and now never will
        score_a, score_b = self.battle_scores
        if side == "a":
            self.battle_scores = (score_a - points, score_b)
        else:
            self.battle_scores = (score_a, score_b - points)
        self._battle_changed = True

    def correct_result(self, battle: Battle) -> None:
        """An ended battle's result as the database now holds it (a gift in it was reversed
        after the end): it replaces the one shown, or is the result if none came yet."""
        assert battle.status is BattleStatus.ENDED
        current = self.battle
        if current is None or current.id != battle.id:
            return  # not the battle this room shows
        if not current.status.over:
            self.end_battle(battle)  # its battle_ended is late: this is the result
            return
        if (current.score_a, current.score_b, current.winner) == (
            battle.score_a,
            battle.score_b,
            battle.winner,
        ):
            return  # said already
        self.battle = battle
        self.battle_scores = (battle.score_a, battle.score_b)
        self._battle_changed = True

    def end_battle(self, battle: Battle) -> None:
        """The result, once: the database's scores replace the live ones, and the winner."""
        assert battle.status is BattleStatus.ENDED
        current = self.battle
        if current is not None and current.id == battle.id and current.status.over:
            return
        if battle.id <= self._battle_gone_id:
            return  # shown and taken down already
        self._news.append(battle.ended_event())
        if current is None or battle.id >= current.id:
            self.battle = battle
            self.battle_scores = (battle.score_a, battle.score_b)
            self._battle_changed = True

    def _advance_goal(self, amount: int) -> None:
        assert self.goal is not None
        before = self.goal_progress
        self.goal_progress += amount
        self._goal_changed = True
        if before < self.goal.target <= self.goal_progress:
            self._news.append(GoalReachedShown(goal_id=self.goal.id))

    def chat(self, message: ChatLine) -> None:
        self._learn_months(message.user_id, message.sub_months)
        self._chat.append(message)
        del self._chat[:-CHAT_HISTORY]
        message_id = message.message_id
        if message_id is not None:
            self._chat_ids[message_id] = message
            if len(self._chat_ids) > CHAT_IDS_KEPT:
                del self._chat_ids[next(iter(self._chat_ids))]
        self._news.append(
            ChatShown(
                message_id=message_id,
                user_id=message.user_id,
                handle=message.handle,
                text=message.text,
                level=message.level,
                sub_months=message.sub_months,
                club=message.club,
            )
        )

    def paid_message(self, posted: PaidMessagePosted) -> None:
        """A paid message, pinned once (its news may come again); a hidden one stays hidden.
        One whose time is over by the next tick is never said (``tick``)."""
        send_id = posted.send_id
        if send_id in self._paid or send_id in self._paid_hidden:
            return
        message = PaidMessage(**msgspec.structs.asdict(posted))
        self._paid[send_id] = message
        while len(self._paid) > PAID_PINNED_MAX:
            del self._paid[next(iter(self._paid))]
        self._news.append(PaidMessageShown(**msgspec.structs.asdict(message)))

    def hide_paid_message(self, send_id: str) -> None:
        """A moderator hid a paid message: off every screen, said once (also when this copy of
        the room does not hold it: a viewer may have had it from another node)."""
        if send_id in self._paid_hidden:
            return
        self._paid_hidden[send_id] = None
        if len(self._paid_hidden) > PAID_HIDDEN_KEPT:
            del self._paid_hidden[next(iter(self._paid_hidden))]
        self._paid.pop(send_id, None)
        self._news.append(PaidMessageHiddenShown(send_id=send_id))

    def thanks(self, posted: ThanksPosted) -> None:
        """The creator thanked their last stream's supporters while this one is live: said
        once (its news may come again), kept for the snapshots; a hidden one stays hidden."""
        if posted.stream_id in self._thanks_hidden:
            return
        if self._thanks is not None and self._thanks.stream_id == posted.stream_id:
            return
        self._thanks = Thanked(**msgspec.structs.asdict(posted))
        self._news.append(ThanksShown(**msgspec.structs.asdict(posted)))

    def hide_thanks(self, stream_id: str) -> None:
        """A moderator (or the creator) hid the thank-you for ``stream_id``: off every screen,
        said once (also when this copy of the room does not hold it)."""
        if stream_id in self._thanks_hidden:
            return
        self._thanks_hidden.add(stream_id)
        if self._thanks is not None and self._thanks.stream_id == stream_id:
            self._thanks = None
        self._news.append(ThanksHiddenShown(stream_id=stream_id))

    def _unpin_expired(self, now_us: int) -> None:
        """Messages whose time is over leave the room's state silently: every screen takes
        one down at its ``pinned_until_us`` by itself."""
        expired = [k for k, m in self._paid.items() if m.pinned_until_us <= now_us]
        for send_id in expired:
            del self._paid[send_id]
        if expired:
            self._news = [
                e
                for e in self._news
                if not (isinstance(e, PaidMessageShown) and e.pinned_until_us <= now_us)
            ]

    def chat_line(self, message_id: str) -> ChatLine | None:
        """One of the newest CHAT_IDS_KEPT lines, not deleted: what a report keeps of it."""
        return self._chat_ids.get(message_id)

    def join(
        self,
        user_id: int,
        handle: str,
        level: int | None = None,
        sub_months: int = 0,
        club: ClubBadge | None = None,
    ) -> None:
        self._learn_months(user_id, sub_months)
        if len(self._joined) < JOINS_NAMED_PER_TICK:
            self._joined.append(
                JoinedUser(
                    user_id=user_id, handle=handle, level=level, sub_months=sub_months, club=club
                )
            )
        else:
            self._joined_others += 1

    def level_up(self, e: LevelReached) -> None:
        """A gifter reached a level with a gift in this room: "ana reached level 12"."""
        self._news.append(LevelUpShown(user_id=e.user_id, handle=e.handle, level=e.level))

    def subs_gifted(self, e: SubsGifted) -> None:
        """A viewer's gifted subscriptions, announced once per purchase (news may come again)."""
        if e.gift_id in self._subs_gifted:
            return
        self._subs_gifted[e.gift_id] = None
        for recipient in e.recipients:
            self._learn_months(recipient.user_id, recipient.months)
        while len(self._subs_gifted) > MAX_SUBS_GIFTED_SEEN:
            del self._subs_gifted[next(iter(self._subs_gifted))]
        self._news.append(
            SubsGiftedShown(
                gift_id=e.gift_id,
                buyer_id=e.buyer_id,
                buyer=e.buyer,
                count=e.count,
                recipients=e.recipients,
                at_us=e.at_us,
            )
        )

    def _learn_months(self, user_id: int, months: int) -> None:
        """The subscriber badge a person's chat line, join or gifted subscription showed last:
        what their row among the top gifters shows too (no query per tick)."""
        if self._sub_months.get(user_id, 0) == months:
            return
        self._sub_months.pop(user_id, None)  # the newest is forgotten last
        self._sub_months[user_id] = months
        while len(self._sub_months) > MAX_SUB_MONTHS_KNOWN:
            del self._sub_months[next(iter(self._sub_months))]
        if self._leaderboard.has(user_id):
            self._leaderboard_changed = True

    def delete_message(self, message_id: str) -> None:
        """A moderator removed a message: gone from the history, and from every screen (said
        once, with the tick's other deletes); an unknown or already deleted one is ignored."""
        if message_id not in self._chat_ids:
            return
        del self._chat_ids[message_id]
        self._chat = [m for m in self._chat if m.message_id != message_id]
        self._deleted[message_id] = None

    def mute(self, user_id: int, until_us: int) -> None:
        if self._muted_until.get(user_id) == until_us:
            return  # said already
        self._muted_until.pop(user_id, None)  # the newest mute is forgotten last
        self._muted_until[user_id] = until_us
        while len(self._muted_until) > MAX_MUTES:
            forgotten = next(iter(self._muted_until))
            del self._muted_until[forgotten]
            self._mutes.pop(forgotten, None)
        self._mutes[user_id] = until_us  # a second mute of the user in a tick replaces the first

    def muted(self, user_id: int, now_us: int) -> bool:
        return self._muted_until.get(user_id, 0) > now_us

    def set_viewers(self, viewers: int) -> None:
        if viewers != self.viewers:
            self.viewers = viewers
            self._viewers_changed = True

    def end(self) -> None:
        if not self.ended:
            self.ended = True
            self._news.append(StreamEndedShown())

    def tick(self, now_us: int) -> list[RoomEvent]:
        """Everything new since the last tick, in a stable order; empty when nothing is."""
        events: list[RoomEvent] = list(self._combos.drain(now_us))
        self._remember(events)
        if self._likes_pending:
            events.append(LikesShown(count=self._likes_pending, total=self.likes))
            self._likes_pending = 0
        if self._likers_changed:
            events.append(self._likers_event())
            self._likers_changed = False
        if self._paid:
            self._unpin_expired(now_us)
        events.extend(self._news)
        self._news = []
        if self._deleted:
            deleted = _take(self._deleted, MODERATION_PER_TICK)
            events.append(ChatDeletedShown(message_ids=[m for m, _ in deleted]))
        if self._mutes:
            muted = _take(self._mutes, MODERATION_PER_TICK)
            events.append(MutesShown(mutes=muted))
        if self._joined or self._joined_others:
            events.append(JoinsShown(users=self._joined, others=self._joined_others))
            self._joined, self._joined_others = [], 0
        if (
            self._leaderboard_changed
            and now_us - self._leaderboard_said_at_us >= LEADERBOARD_EVERY_US
        ):
            self._leaderboard_said_at_us = now_us
            events.append(self._leaderboard_event())
            self._leaderboard_changed = False
        if self._goal_changed:
            events.append(self._goal_event())
            self._goal_changed = False
        if self.battle is not None and self._result_over(self.battle, now_us):
            self._battle_gone_id = max(self._battle_gone_id, self.battle.id)
            self.battle = None  # every screen takes the result down: {"battle_id": null}
            self.battle_scores = (0, 0)
            self._battle_changed = True
        if self._battle_changed:
            events.append(self._battle_event())
            self._battle_changed = False
        if self._viewers_changed and now_us - self._viewers_said_at_us >= VIEWERS_EVERY_US:
            events.append(ViewersShown(count=self.viewers))
            self._viewers_changed = False
            self._viewers_said_at_us = now_us
        return events

    def _result_over(self, battle: Battle, now_us: int) -> bool:
        """A battle that is over (a result, a declined or lapsed invitation) and was shown
        long enough."""
        ended = battle.ended_at_us
        return battle.status.over and ended is not None and now_us - ended >= self._battle_result_us

    def _goal_event(self) -> GoalShown | NoGoal:
        if self.goal is None:
            return NoGoal()
        return self.goal.event(self.goal_progress)

    def _battle_event(self) -> BattleShown | NoBattle:
        if self.battle is None:
            return NoBattle()
        return self.battle.event(*self.battle_scores)

    def snapshot(self) -> Snapshot:
        """Everything a viewer needs to draw the room from scratch."""
        return Snapshot(
            stream_id=self.stream_id,
            viewers=self.viewers,
            likes=self.likes,
            likers=self._likers_event(),
            ended=self.ended,
            combos=self._combos.open_combos(),
            recent_gifts=list(self._recent),
            chat=list(self._chat),
            leaderboard=self._leaderboard_event(),
            goal=self._goal_event(),
            battle=self._battle_event(),
            paid_messages=list(self._paid.values()),
            thanks=self._thanks,
        )

    def _likers_event(self) -> LikersShown:
        return LikersShown(top=self._likers.top(LEADERBOARD_SIZE))

    def _leaderboard_event(self) -> LeaderboardShown:
        top = self._leaderboard.top(LEADERBOARD_SIZE)
        levels = self._levels
        if levels is not None:  # at most ten lookups in this node's cache, twice a second
            top = [_with_level(row, levels(row.user_id)) for row in top]
        if self._sub_months:
            top = [_with_months(row, self._sub_months.get(row.user_id, 0)) for row in top]
        return LeaderboardShown(top=top, coins=self.coins, diamonds=self.diamonds)


def _with_level(row: Ranked, level: int | None) -> Ranked:
    return row if level is None else msgspec.structs.replace(row, level=level)


def _with_months(row: Ranked, months: int) -> Ranked:
    return row if not months else msgspec.structs.replace(row, sub_months=months)
