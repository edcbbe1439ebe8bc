// The OBS overlay: gift alerts with combo counters, the goal bar, the battle bar and the pinned
// paid messages, drawn from the room's WebSocket (docs/protocol.md). Read-only: it never sends
// a command.

import { connectRoom } from "./room.js";
import { boot, t } from "./site.js";
import { BattleBar, BIG_GIFT_COINS, Catalogue, GiftLane, GoalBar, PaidPins, levelBadge, subsGiftedLine } from "./widgets.js";

const body = document.body;
const soundOn = body.dataset.sound === "on";
const catalogue = new Catalogue(boot.gifts);

function beep(event) {
  if (!soundOn) return;
  const ctx = (beep.ctx ??= new AudioContext());
  const osc = ctx.createOscillator();
  const gain = ctx.createGain();
  osc.frequency.value = catalogue.price(event.gift_id) >= BIG_GIFT_COINS ? 880 : 660;
  gain.gain.setValueAtTime(0.15, ctx.currentTime);
  gain.gain.exponentialRampToValueAtTime(0.001, ctx.currentTime + 0.4);
  osc.connect(gain).connect(ctx.destination);
  osc.start();
  osc.stop(ctx.currentTime + 0.4);
}

const lane = new GiftLane(document.getElementById("lane"), catalogue, { onNew: beep });
const goal = new GoalBar(document.getElementById("goal"));
const battle = new BattleBar(document.getElementById("battle"));
const pins = new PaidPins(document.getElementById("paid-pins"));

// "ana reached level 12": one alert at a time, each shown LEVEL_UP_MS.
const LEVEL_UP_MS = 5_000;
const levelUps = document.getElementById("level-ups");
function levelUp(e) {
  if (!levelUps) return;
  const li = document.createElement("li");
  li.className = "level-up-alert";
  const text = document.createElement("bdi");
  text.textContent = t("{handle} reached level {level}", { handle: e.handle, level: e.level });
  li.append(levelBadge(e.level), " ", text);
  levelUps.append(li);
  setTimeout(() => li.remove(), LEVEL_UP_MS);
}

// "ana gifted 5 subs!", each recipient named: shown like a level-up.
function subsGifted(e) {
  if (!levelUps) return;
  const li = subsGiftedLine(e, "li");
  li.classList.add("level-up-alert");
  levelUps.append(li);
  setTimeout(() => li.remove(), LEVEL_UP_MS);
}

const handlers = {
  snapshot: (snap) => {
    lane.snapshot(snap);
    goal.update(snap.goal);
    battle.update(snap.battle);
    pins.snapshot(snap);
  },
  gift: (e) => lane.gift(e),
  combo_counts: (e) => lane.counts(e),
  goal: (e) => goal.update(e),
  goal_reached: () => goal.reached(),
  battle: (e) => battle.update(e),
  battle_ended: (e) => battle.ended(e),
  level_up: levelUp,
  subs_gifted: subsGifted,
  paid_message: (e) => pins.add(e),
  paid_message_hidden: (e) => pins.hide(e.send_id),
};

// `/overlay/live?key=…` follows the creator: while they are not live it waits, and when their
// stream ends it looks again for the next one.
const FOLLOW_MS = 10_000;
const follow = () => setTimeout(() => location.reload(), FOLLOW_MS);

if (!boot.stream_id) {
  body.dataset.connected = "0";
  follow();
} else {
  connectRoom(boot.stream_id, {
    onEvent(event) {
      handlers[event.type]?.(event);
      if (boot.follows_live && (event.type === "stream_ended" || event.ended)) follow();
    },
    onStatus: (status) => {
      body.dataset.connected = status === "open" ? "1" : "0";
      if (status === "gone" && boot.follows_live) follow();
    },
  });
}
