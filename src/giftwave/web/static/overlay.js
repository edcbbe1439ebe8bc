// The OBS overlay: gift alerts with combo counters, the goal bar and the battle bar, drawn
// from the room's WebSocket (protocol: docs/protocol.md). Read-only: it never sends a command.

const body = document.body;
const streamId = body.dataset.stream;
const params = new URLSearchParams(location.search);
const locale = ["en", "es", "ar"].includes(params.get("lang")) ? params.get("lang") : "en";
const soundOn = body.dataset.sound === "on";
const MAX_ALERTS = 6;
const FINAL_SHOWN_MS = 4000;
const BIG_SHOWN_MS = 8000;
const BIG_GIFT_COINS = 1000;

const alerts = document.getElementById("alerts");
const goalBox = document.getElementById("goal");
const battleBox = document.getElementById("battle");
const shown = new Map(); // combo_id -> <li>
const byNumber = new Map(); // the room's short number of a combo -> its combo_id
let gifts = new Map(); // gift_id -> {name, price_coins, image}
let battle = null;
let resume = null; // {seq, epoch} of the last frame, to resume after a reconnect

async function loadGifts() {
  try {
    const r = await fetch(`/v1/gifts?locale=${locale}`);
    if (r.ok) gifts = new Map((await r.json()).map((g) => [g.gift_id, g]));
  } catch (_) { /* names fall back to ids */ }
}

function giftName(id) {
  return gifts.get(id)?.name ?? id;
}

function beep(coins) {
  if (!soundOn) return;
  const ctx = (beep.ctx ??= new AudioContext());
  const osc = ctx.createOscillator();
  const gain = ctx.createGain();
  osc.frequency.value = coins >= BIG_GIFT_COINS ? 880 : 660;
  gain.gain.setValueAtTime(0.15, ctx.currentTime);
  gain.gain.exponentialRampToValueAtTime(0.001, ctx.currentTime + 0.4);
  osc.connect(gain).connect(ctx.destination);
  osc.start();
  osc.stop(ctx.currentTime + 0.4);
}

function alertFor(event) {
  let li = shown.get(event.combo_id);
  if (!li) {
    li = document.createElement("li");
    li.className = "alert";
    li.dataset.combo = event.combo_id;
    li.dataset.gift = event.gift_id;
    const icon = document.createElement("img");
    icon.className = "gift-icon";
    icon.alt = "";
    const image = gifts.get(event.gift_id)?.image;
    if (image) icon.src = image; else icon.hidden = true;
    const text = document.createElement("span");
    text.className = "text";
    text.textContent = `${event.sender} · ${giftName(event.gift_id)}`;
    const count = document.createElement("span");
    count.className = "count";
    li.append(icon, text, count);
    alerts.prepend(li);
    shown.set(event.combo_id, li);
    while (alerts.children.length > MAX_ALERTS) drop(alerts.lastElementChild);
    beep(event.coins);
  }
  return li;
}

function setCount(li, count, coins) {
  li.querySelector(".count").textContent = `x${count}`;
  li.dataset.count = String(count);
  li.classList.toggle("big", coins >= BIG_GIFT_COINS);
}

function drop(li) {
  if (!li) return;
  shown.delete(li.dataset.combo);
  li.remove();
}

function onGift(event) {
  byNumber.set(event.n, event.combo_id);
  const li = alertFor(event);
  setCount(li, event.count, event.coins);
  if (event.final && !li.dataset.final) {
    li.dataset.final = "1";
    const ms = event.coins >= BIG_GIFT_COINS ? BIG_SHOWN_MS : FINAL_SHOWN_MS;
    setTimeout(() => { li.classList.add("done"); setTimeout(() => drop(li), 600); }, ms);
  }
}

function onComboCounts(event) {
  for (const [n, count, coins] of event.counts) {
    const li = shown.get(byNumber.get(n));
    if (li) setCount(li, count, coins);
  }
}

function onGoal(goal) {
  if (!goal || goal.goal_id === null) { goalBox.hidden = true; return; }
  goalBox.hidden = false;
  const pct = Math.min(100, (100 * goal.progress) / goal.target);
  goalBox.querySelector(".goal-title").textContent = goal.title;
  goalBox.querySelector(".goal-fill").style.width = `${pct}%`;
  goalBox.querySelector(".goal-numbers").textContent =
    `${goal.progress.toLocaleString()} / ${goal.target.toLocaleString()}`;
  goalBox.classList.toggle("reached", goal.reached);
}

function onBattle(event) {
  if (!event || event.battle_id === null) { battle = null; battleBox.hidden = true; return; }
  battle = event;
  battleBox.hidden = false;
  for (const [i, side] of event.sides.entries()) {
    const el = battleBox.querySelector(i === 0 ? ".battle-side.a" : ".battle-side.b");
    el.querySelector(".name").textContent = side.handle;
    el.querySelector(".score").textContent = side.score.toLocaleString();
  }
  drawTimer();
}

function drawTimer() {
  if (!battle) return;
  const timer = battleBox.querySelector(".battle-timer");
  if (battle.winner) {
    const winner = battle.winner === "draw" ? "draw" : battle.sides[battle.winner === "a" ? 0 : 1].handle;
    timer.textContent = battle.winner === "draw" ? "Draw" : `${winner} wins`;
    return;
  }
  const left = battle.ends_at_us ? Math.max(0, battle.ends_at_us / 1000 - Date.now()) : 0;
  const s = Math.ceil(left / 1000);
  timer.textContent = `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}
setInterval(drawTimer, 250);

function onSnapshot(snap) {
  for (const li of [...alerts.children]) drop(li);
  byNumber.clear(); // numbers are per epoch: the snapshot's combos bring theirs
  for (const combo of snap.combos) onGift(combo);
  onGoal(snap.goal);
  onBattle(snap.battle);
}

const handlers = {
  snapshot: onSnapshot,
  gift: onGift,
  combo_counts: onComboCounts,
  goal: onGoal,
  goal_reached: () => goalBox.classList.add("reached"),
  battle: onBattle,
  battle_ended: (e) => onBattle({ ...battle, ...e, status: "ended" }),
};

function connect(delayMs = 500) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  let url = `${scheme}://${location.host}/v1/streams/${encodeURIComponent(streamId)}/ws`;
  if (resume) url += `?since=${resume.seq}&epoch=${resume.epoch}`;
  const ws = new WebSocket(url);
  ws.onopen = () => { delayMs = 500; body.dataset.connected = "1"; };
  ws.onmessage = (message) => {
    const frame = JSON.parse(message.data);
    if (frame.seq === undefined) return; // an ack: the overlay sends no commands
    resume = { seq: frame.seq, epoch: frame.epoch };
    for (const event of frame.events) handlers[event.type]?.(event);
  };
  ws.onclose = (close) => {
    body.dataset.connected = "0";
    if (close.code === 4404) return; // no such stream: nothing to wait for
    setTimeout(() => connect(Math.min(delayMs * 2, 8000)), delayMs);
  };
}

await loadGifts();
connect();
