// The viewer page and the embeddable gift panel: the room's gifts as animations and combo
// counters, the gift tray (tap to send, hold a combo gift to repeat it), likes with floating
// hearts, chat, the top-gifter board, the goal and battle bars, and the video when there is one.

import { connectRoom } from "./room.js";
import {
  api, bearer, boot, fmt, getBalance, loginUrl, problemMessage, refreshBalance, setBalance, t, toast,
  idempotencyKey, locale,
} from "./site.js";
import { asksFirst, confirmThenSend, noteSent } from "./spend.js";
import { BattleBar, Catalogue, GiftLane, GoalBar, PaidPins, TopGifters, levelBadge, subsGiftedLine } from "./widgets.js";
import { ChatActions, chatLine, moderatesRoom } from "./moderation.js";
import { rovingTray } from "./tray_keys.js";

const $ = (id) => document.getElementById(id);
const catalogue = new Catalogue(boot.gifts);
const reducedMotion = matchMedia("(prefers-reduced-motion: reduce)").matches;
const HOLD_DELAY_MS = 350;
const HOLD_REPEAT_MS = 140;
const LIKE_FLUSH_MS = 300;
const MAX_FX = 24;
const CHAT_KEPT = 100;

// ---- gift animations: they scale with the gift ------------------------------------------
// tier 1 (< 10 coins) floats up; 2 (< 100) floats bigger; 3 (< 1,000) pops in the middle;
// 4 (< 10,000) takes the middle with a glow; 5 (10,000 and up) fills the whole stage.
function tierOf(price) {
  if (price < 10) return 1;
  if (price < 100) return 2;
  if (price < 1000) return 3;
  if (price < 10000) return 4;
  return 5;
}

const fx = $("fx");
function animateGift(giftId, sender) {
  if (!fx || fx.childElementCount >= MAX_FX) return;
  const price = catalogue.price(giftId);
  const tier = tierOf(price);
  const el = document.createElement("div");
  el.className = `fx-gift tier-${tier}`;
  el.dataset.gift = giftId;
  const img = document.createElement("img");
  img.src = catalogue.image(giftId) || "";
  img.alt = "";
  el.append(img);
  if (tier >= 3) {
    const caption = document.createElement("p");
    caption.className = "fx-caption";
    caption.textContent = t("{sender} sent {gift}", { sender, gift: catalogue.name(giftId) });
    el.append(caption);
  }
  if (tier <= 2) el.style.setProperty("--x", `${10 + Math.random() * 70}%`);
  fx.append(el);
  const ms = reducedMotion ? 1200 : [0, 2200, 2600, 3200, 4200, 5600][tier];
  setTimeout(() => el.remove(), ms);
}

// ---- the room ---------------------------------------------------------------------------
const laneList = $("lane");
const lane = laneList
  ? new GiftLane(laneList, catalogue, { max: boot.stream_id && $("chat-log") ? 5 : 4 })
  : null;
const goal = new GoalBar($("goal"));
const battle = new BattleBar($("battle"));
const board = new TopGifters($("leaderboard"));
const chatLog = $("chat-log");
const pins = new PaidPins($("paid-pins"));
const likesEl = $("likes");
const viewersEl = $("viewers");

function renderBoard(event) {
  if ($("stream-coins")) $("stream-coins").textContent = fmt(event.coins);
  if ($("stream-diamonds")) $("stream-diamonds").textContent = fmt(event.diamonds);
  board.update(event.top);
}

let chatActions = null; // each line's Report, or Delete / Mute / Ban (moderation.js)

function addChat(message) {
  if (!chatLog) return;
  const li = chatLine(message);
  chatActions?.decorate(li);
  chatLog.append(li);
  while (chatLog.children.length > CHAT_KEPT) chatLog.firstElementChild.remove();
  chatLog.scrollTop = chatLog.scrollHeight;
}

function floatHearts(n) {
  const box = $("hearts");
  if (!box || reducedMotion) return;
  for (let i = 0; i < Math.min(n, 6) && box.childElementCount < 30; i++) {
    const h = document.createElement("span");
    h.className = "heart";
    h.textContent = "♥";
    h.style.setProperty("--dx", `${Math.round((Math.random() - 0.5) * 60)}px`);
    h.style.setProperty("--hue", String(Math.floor(Math.random() * 60) - 20));
    h.style.animationDelay = `${i * 90}ms`;
    box.append(h);
    setTimeout(() => h.remove(), 2200 + i * 90);
  }
}

const handlers = {
  snapshot(snap) {
    lane?.snapshot(snap);
    for (const g of snap.fresh_gifts.slice(-3)) lane?.gift(g);
    goal.update(snap.goal);
    battle.update(snap.battle);
    renderBoard(snap.leaderboard);
    if (likesEl) likesEl.textContent = fmt(snap.likes);
    if (viewersEl) viewersEl.textContent = fmt(snap.viewers);
    if (chatLog) { chatLog.replaceChildren(); for (const m of snap.chat) addChat(m); }
    pins.snapshot(snap);
    if (snap.thanks) showThanks(snap.thanks);
    if (snap.ended) ended();
  },
  gift(e) {
    const added = lane ? lane.gift(e) : 1;
    for (let i = 0; i < Math.min(added, 3); i++) animateGift(e.gift_id, e.sender);
  },
  combo_counts(e) {
    lane?.counts(e, (combo, added) => {
      const li = lane.shown.get(combo.combo_id);
      const sender = li?.querySelector(".text bdi")?.textContent || "";
      for (let i = 0; i < Math.min(added, 3); i++) animateGift(combo.gift_id, sender);
    });
  },
  leaderboard: renderBoard,
  like(e) {
    if (likesEl) likesEl.textContent = fmt(e.total);
    floatHearts(e.count);
  },
  chat: addChat,
  level_up(e) {
    const said = t("{handle} reached level {level}", { handle: e.handle, level: e.level });
    if (chatLog) {
      const li = document.createElement("li");
      li.className = "level-up";
      li.dataset.user = String(e.user_id);
      const badge = levelBadge(e.level);
      const text = document.createElement("bdi");
      text.textContent = said;
      li.append(badge, " ", text);
      chatLog.append(li);
      chatLog.scrollTop = chatLog.scrollHeight;
    } else {
      toast(said);
    }
  },
  thanks_shown: showThanks,
  thanks_hidden: (e) => chatLog?.querySelector(`li[data-thanks="${CSS.escape(e.stream_id)}"]`)?.remove(),
  paid_message: (e) => pins.add(e),
  paid_message_hidden: (e) => pins.hide(e.send_id),
  subs_gifted(e) {
    // "ana gifted 5 subs!" with each recipient, in the chat; a recipient is also told.
    if (chatLog) {
      chatLog.append(subsGiftedLine(e));
      chatLog.scrollTop = chatLog.scrollHeight;
    }
    if (boot.user && e.recipients.some((r) => r.user_id === boot.user.id)) {
      toast(t("{handle} gifted you a subscription!", { handle: e.buyer }));
    }
  },
  chat_deleted(e) {
    for (const id of e.message_ids) {
      const li = chatLog?.querySelector(`li[data-id="${CSS.escape(id)}"]`);
      if (li) {
        li.classList.add("deleted");
        li.querySelector(".text").textContent = t("Message deleted");
        li.querySelector(".line-actions")?.remove();
      }
    }
  },
  goal: (e) => goal.update(e),
  goal_reached() { goal.reached(); toast(t("Goal reached!")); },
  battle: (e) => battle.update(e),
  battle_ended: (e) => battle.ended(e),
  viewers(e) { if (viewersEl) viewersEl.textContent = fmt(e.count); },
  stream_ended: ended,
  spending_reminder: remind,
};

// The creator's thank-you to their last stream's top supporters (docs/community.md, "Thanks"):
// one line at the top of the chat, "Thanks to ana, bo and cy for last stream's support", and
// the creator's words; a recipient watching is told too.
const listFormat = new Intl.ListFormat(locale, { style: "long", type: "conjunction" });
function showThanks(e) {
  if (!chatLog) return;
  chatLog.querySelector("li.thanks-line")?.remove();
  const li = document.createElement("li");
  li.className = "thanks-line";
  li.dataset.thanks = e.stream_id;
  const said = document.createElement("bdi");
  const names = listFormat.format(e.recipients.map((r) => r.handle));
  said.textContent = t("Thanks to {names} for last stream's support", { names });
  const words = document.createElement("q");
  words.className = "thanks-words";
  words.textContent = e.text;
  li.append(said, " ", words);
  chatLog.prepend(li);
  if (boot.user && e.recipients.some((r) => r.user_id === boot.user.id)) {
    toast(t("The creator thanked you for your support!"));
  }
}

function ended() {
  document.body.classList.add("stream-ended");
  for (const notice of document.querySelectorAll(".ended-notice")) notice.hidden = false;
  // Ended, everywhere the room says so: the badge, no viewer count, the stage's own words.
  for (const badge of document.querySelectorAll(".live-badge")) {
    badge.className = "ended-badge";
    badge.textContent = t("Ended");
  }
  if (viewersEl?.closest(".viewer-count")) viewersEl.closest(".viewer-count").hidden = true;
  if ($("placeholder-text")) $("placeholder-text").textContent = t("This stream has ended");
  $("gift-sheet")?.classList.remove("open");
  for (const b of document.querySelectorAll(".gift-button, #gift-open, #like, #chat-form button, #chat-text")) b.disabled = true;
}

function joinRoom() {
  // Logged in by cookie: the cookie opens the socket. By bearer token (the embed): a one-use
  // ticket for each connection, never the token itself in the URL.
  const byBearer = boot.user?.via !== "cookie" && bearer();
  const path = `/v1/streams/${encodeURIComponent(boot.stream_id)}/ws-ticket`;
  return connectRoom(boot.stream_id, {
    ticket: byBearer ? async () => (await api("POST", path)).ticket : null,
    onEvent: (event) => handlers[event.type]?.(event),
    onStatus(status) {
      document.body.dataset.connected = status === "open" ? "1" : "0";
      if (status === "reconnecting") toast(t("Reconnecting…"), { ms: 2000 });
    },
  });
}
let room = joinRoom();
if (chatLog && boot.user) {
  chatActions = new ChatActions({
    streamId: boot.stream_id, creatorId: boot.creator_id, me: boot.user, send: (c) => room.send(c),
  });
  for (const li of chatLog.querySelectorAll("li[data-id]")) chatActions.decorate(li);
  moderatesRoom(boot.creator_id).then((yes) => { if (yes) chatActions.setModerates(true, chatLog); });
}
// The embed logged in by itself (no cookie in a third-party frame): join again as that user.
window.addEventListener("giftwave:login", () => {
  room.close();
  document.body.dataset.connected = "0";
  room = joinRoom();
});

// ---- acting: gifts, likes, chat ---------------------------------------------------------
function needLogin(message) {
  if (boot.user || bearer()) return false;
  const embedLogin = document.getElementById("embed-login");
  if (embedLogin) { embedLogin.hidden = false; embedLogin.querySelector("input")?.focus(); return true; }
  toast(t(message), { link: loginUrl(), linkText: t("Log in") });
  return true;
}

// A gentle reminder, for this viewer alone: a personal event on their own socket, once per
// gift that made it due (docs/protocol.md). It stays until dismissed or a minute has passed,
// one at a time; it never blocks the tray.
const REMINDER_MS = 60000;
function remind(reminder) {
  const text = reminder.reason === "gifting_time"
    ? t("You have been sending gifts for {minutes} minutes. Time for a break?", { minutes: fmt(reminder.minutes) })
    : t("This month you have spent more than in your average month.");
  const box = document.getElementById("toasts");
  if (!box) return;
  box.querySelector(".spending-reminder")?.remove();
  const note = document.createElement("div");
  note.className = "toast spending-reminder";
  const said = document.createElement("p");
  said.textContent = text;
  const link = document.createElement("a");
  link.href = "/me/spending";
  link.textContent = t("Your spending");
  const dismiss = document.createElement("button");
  dismiss.type = "button";
  dismiss.className = "dismiss";
  dismiss.textContent = t("Dismiss");
  const gone = setTimeout(() => note.remove(), REMINDER_MS);
  dismiss.addEventListener("click", () => { clearTimeout(gone); note.remove(); });
  const actions = document.createElement("div");
  actions.className = "actions";
  actions.append(link, dismiss);
  note.append(said, actions);
  box.append(note);
}

function explain(error) {
  switch (error.code) {
    case "insufficient_coins":
      toast(t("Not enough coins"), { link: "/shop", linkText: t("Buy coins"), kind: "error" });
      refreshBalance();
      break;
    case "login_required": needLogin("Log in to send gifts"); break;
    case "rate_limited": case "gift_rate_limited": toast(t("Slow down a little"), { kind: "error" }); break;
    case "muted": toast(t("You are muted"), { kind: "error" }); break;
    case "banned": toast(t("The creator banned you from their rooms"), { kind: "error" }); break;
    case "stream_not_live": case "stream_not_found": toast(t("This stream has ended"), { kind: "error" }); ended(); break;
    case "connection_lost": break;
    default: toast(problemMessage(error) || error.detail || t("Something went wrong"), { kind: "error" });
  }
}

async function sendGift(button) {
  if (needLogin("Log in to send gifts")) return false;
  const price = Number(button.dataset.price);
  const balance = getBalance();
  if (balance !== null && balance < price) {
    explain({ code: "insufficient_coins" });
    return false;
  }
  if (balance !== null) setBalance(balance - price); // shown at once; the receipt corrects it
  button.classList.remove("sent");
  void button.offsetWidth;
  button.classList.add("sent");
  // A highlighted message goes with the next gift only, in the same command (both or neither).
  const paidText = $("paid-text");
  const message = paidText?.value.trim() || undefined;
  if (message) paidText.value = "";
  try {
    const receipt = await room.send({
      cmd: "send_gift", gift_id: button.dataset.gift, count: 1, idempotency_key: idempotencyKey(), message,
    });
    setBalance(receipt.balance_coins);
    noteSent(button);
    return true;
  } catch (error) {
    if (balance !== null) refreshBalance();
    if (message && paidText && !paidText.value) paidText.value = message; // not sent: keep it
    explain(error);
    return false;
  }
}

// An expensive gift asks first (spend.js), unless the viewer must log in or cannot afford it:
// then sendGift says so at once.
const mustAsk = (button) => asksFirst(button) && Boolean(boot.user || bearer())
  && !(getBalance() !== null && getBalance() < Number(button.dataset.price));

rovingTray(document.querySelector(".tray")); // one tab stop, arrow keys inside (tray_keys.js)

for (const button of document.querySelectorAll(".gift-button")) {
  let holding = null;
  const stop = () => { clearTimeout(holding?.delay); clearInterval(holding?.repeat); holding = null; };
  button.addEventListener("pointerdown", (e) => {
    if (e.button !== 0) return;
    stop();
    if (asksFirst(button)) return; // a click asks: never billed on a touch
    sendGift(button);
    if (button.dataset.combo !== "yes") return;
    holding = {};
    holding.delay = setTimeout(() => {
      holding.repeat = setInterval(async () => { if (!(await sendGift(button))) stop(); }, HOLD_REPEAT_MS);
    }, HOLD_DELAY_MS);
  });
  for (const type of ["pointerup", "pointerleave", "pointercancel"]) button.addEventListener(type, stop);
  button.addEventListener("contextmenu", (e) => e.preventDefault());
  // Keyboard: Enter or Space sends one (held down, the key repeats and so does the combo).
  button.addEventListener("click", (e) => {
    if (mustAsk(button)) confirmThenSend(button, sendGift);
    else if (e.detail === 0 || asksFirst(button)) sendGift(button);
  });
}

let likesOwed = 0;
let likeTimer = null;
$("like")?.addEventListener("click", () => {
  if (needLogin("Log in to like")) return;
  likesOwed += 1;
  floatHearts(1);
  likeTimer ??= setTimeout(async () => {
    const count = Math.min(likesOwed, 100);
    likesOwed = 0;
    likeTimer = null;
    try { await room.send({ cmd: "like", count }); } catch (error) { explain(error); }
  }, LIKE_FLUSH_MS);
});

$("chat-form")?.addEventListener("submit", async (e) => {
  e.preventDefault();
  const input = $("chat-text");
  const text = input.value.trim();
  if (!text) return;
  if (needLogin("Log in to chat")) return;
  input.value = "";
  try { await room.send({ cmd: "chat", text }); } catch (error) { input.value ||= text; explain(error); }
});

// ---- the video --------------------------------------------------------------------------
async function startVideo(url) {
  const video = $("video");
  if (!video || !url) return;
  const show = () => { video.hidden = false; $("placeholder").hidden = true; };
  if (video.canPlayType("application/vnd.apple.mpegurl")) {
    video.src = url;
    video.addEventListener("loadedmetadata", show, { once: true });
    return;
  }
  if (!url.includes(".m3u8")) {
    video.src = url;
    video.addEventListener("loadedmetadata", show, { once: true });
    return;
  }
  await new Promise((resolve, reject) => {
    const s = document.createElement("script");
    s.src = "/static/vendor/hls.light.min.js";
    s.onload = resolve;
    s.onerror = reject;
    document.head.append(s);
  });
  if (!window.Hls?.isSupported()) return;
  const hls = new window.Hls({ lowLatencyMode: true });
  hls.on(window.Hls.Events.MANIFEST_PARSED, () => { show(); video.play().catch(() => {}); });
  hls.loadSource(url);
  hls.attachMedia(video);
}
if (boot.live) startVideo(boot.playback_url).catch(() => { /* the placeholder stays */ });
if (!boot.live) ended();
