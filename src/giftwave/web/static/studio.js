// The creator studio's live page: go live and end the stream; while live, the dashboard fed by
// the room's WebSocket (the studio sends only chat and moderation commands on it), the room's
// chat with moderation, the goal, battles and their invitations.

import { connectRoom } from "./room.js";
import { api, boot, fmt, problemText, submitting, t, toast } from "./site.js";
import { BattleBar, Catalogue, GiftLane, GoalBar, rankedRow, TopGifters } from "./widgets.js";
import { BattleAlert } from "./battle_alert.js";
import { setUpModeration } from "./studio_moderation.js";

const $ = (id) => document.getElementById(id);
const streamId = boot.stream_id;
const RATE_WINDOW_S = 60;
const COMBOS_KEPT = 2000;
const LANE_KEPT_MS = 60_000;

// Problem codes of the studio's requests, in words (docs/protocol.md "Battles"; api/streams.py).
const BY_CODE = {
  already_live: "You are already live",
  not_a_creator: "Only creators can go live",
  account_blocked: "This account is blocked",
  invalid_playback_url: "A playback address starts with http:// or https://",
  stream_not_live: "That stream is not live any more",
  battle_in_progress: "One of the streams is already in a battle",
  invitation_expired: "The invitation has expired",
  battle_not_pending: "This battle is not waiting for an answer",
};

// ---- going live -------------------------------------------------------------------------
const goLive = $("go-live-form");
goLive?.addEventListener("submit", async (e) => {
  e.preventDefault();
  if (!goLive.reportValidity()) return;
  const data = new FormData(goLive);
  const body = { title: data.get("title").trim(), language: data.get("language") };
  const playbackUrl = data.get("playback_url").trim();
  if (playbackUrl) body.playback_url = playbackUrl;
  await submitting(goLive, async () => {
    try {
      await api("POST", "/v1/streams", body);
    } catch (err) {
      // Live already (another tab went live): the studio of that stream is one reload away.
      if (err.code === "already_live") setTimeout(() => location.reload(), 1500);
      throw err;
    }
    location.reload();
  }, { byCode: BY_CODE, navigates: true });
});

function live() {
  const dialog = $("end-dialog");
  $("end-stream").addEventListener("click", () => {
    dialog.returnValue = ""; // closed with Escape, it keeps the last answer: not "end"
    dialog.showModal();
  });
  dialog.addEventListener("close", async () => {
    if (dialog.returnValue !== "end") return;
    try {
      await api("POST", `/v1/streams/${encodeURIComponent(streamId)}/end`);
      location.reload();
    } catch (err) {
      showError($("stream-error"), err);
    }
  });

  const overlayUrl = $("overlay-url");
  overlayUrl.value = new URL(overlayUrl.value, location.origin).href;
  $("rotate-overlay").addEventListener("click", async () => {
    try {
      const { url } = await api("POST", "/v1/creators/me/overlay/rotate");
      overlayUrl.value = url;
      $("overlay-link").href = url;
      toast(t("Saved"));
    } catch (err) {
      showError($("stream-error"), err);
    }
  });
  $("copy-overlay").addEventListener("click", async () => {
    overlayUrl.select();
    try {
      await navigator.clipboard.writeText(overlayUrl.value);
    } catch (_) {
      if (!document.execCommand("copy")) return; // selected: the creator copies it by hand
    }
    toast(t("Copied"));
  });

  const room = new Dashboard();
  let chatEvent = null; // the room's chat, with moderation on each line (studio_moderation.js)
  const socket = connectRoom(streamId, {
    onEvent: (event) => { room.handlers[event.type]?.(event); chatEvent?.(event); },
    onStatus(status) {
      document.body.dataset.connected = status === "open" ? "1" : "0";
      if (status === "reconnecting") toast(t("Reconnecting…"), { ms: 2000 });
    },
  });
  chatEvent = setUpModeration({ streamId, socket });
  setInterval(() => room.tick(), 1000);
  room.tick();
  setUpGoal();
  setUpBattles(room);
}

function showError(box, err) {
  box.textContent = problemText(err, BY_CODE);
  box.hidden = false;
}

// ---- the dashboard ----------------------------------------------------------------------

/** Gifts counted over a sliding minute, from each combo's growth (`gift` and `combo_counts`
 *  events); it starts from the server's count of the last minute's committed gifts
 *  (`recent`: [[unix second, gifts], ...]), and a combo the first snapshot brings is that
 *  history, not new gifts. */
class GiftRate {
  constructor(recent = []) {
    this.counts = new Map(); // combo_id -> its count as last seen (oldest first)
    this.byNumber = new Map(); // the room's short combo number -> combo_id, this epoch
    this.perSecond = new Map(); // unix second -> gifts
    for (const [second, gifts] of recent.slice(-RATE_WINDOW_S - 1)) this.perSecond.set(second, gifts);
  }

  add(gifts) {
    if (gifts <= 0) return;
    const second = Math.floor(Date.now() / 1000);
    this.perSecond.set(second, (this.perSecond.get(second) || 0) + gifts);
  }

  /** A combo's count now; `baseline`: a combo first seen in a snapshot is history. */
  seen(comboId, count, baseline = false) {
    const before = this.counts.get(comboId);
    this.counts.delete(comboId);
    this.counts.set(comboId, count);
    if (this.counts.size > COMBOS_KEPT) this.counts.delete(this.counts.keys().next().value);
    if (before !== undefined) this.add(count - before);
    else if (!baseline) this.add(count);
  }

  gift(e) {
    this.byNumber.set(e.n, e.combo_id);
    this.seen(e.combo_id, e.count);
  }

  comboCounts(e) {
    for (const [n, count] of e.counts) {
      const comboId = this.byNumber.get(n);
      if (comboId) this.seen(comboId, count);
    }
  }

  /** After a gap, a combo seen before counts what it grew by; one never seen is history. */
  snapshot(snap) {
    this.byNumber.clear(); // numbers are per epoch: the snapshot's combos bring theirs
    for (const g of [...snap.fresh_gifts, ...snap.combos]) {
      if (g.n !== undefined) this.byNumber.set(g.n, g.combo_id);
      this.seen(g.combo_id, g.count, true);
    }
  }

  perMinute() {
    const since = Math.floor(Date.now() / 1000) - RATE_WINDOW_S;
    let gifts = 0;
    for (const [second, n] of this.perSecond) {
      if (second <= since) this.perSecond.delete(second);
      else gifts += n;
    }
    return gifts;
  }
}

class Dashboard {
  constructor() {
    const catalogue = new Catalogue(boot.gifts);
    this.rate = new GiftRate(boot.recent_gifts || []);
    this.lane = new GiftLane($("lane"), catalogue, { max: 8, finalMs: LANE_KEPT_MS, bigMs: LANE_KEPT_MS });
    this.board = new TopGifters($("leaderboard"));
    this.goal = new GoalBar($("goal"));
    this.battle = new BattleBar($("battle"));
    this.battleEvent = null; // the room's latest battle event (see setUpBattles)
    this.onBattle = () => {};
    this.handlers = {
      snapshot: (snap) => {
        this.rate.snapshot(snap);
        this.lane.snapshot(snap);
        for (const g of snap.fresh_gifts.slice(-3)) this.lane.gift(g);
        this.showGoal(snap.goal);
        this.onBattle(snap.battle);
        this.showTotals(snap.leaderboard);
        this.showViewers(snap.viewers);
        if (snap.ended) location.reload();
        this.tick();
      },
      gift: (e) => { this.rate.gift(e); this.lane.gift(e); this.tick(); },
      combo_counts: (e) => { this.rate.comboCounts(e); this.lane.counts(e); this.tick(); },
      leaderboard: (e) => this.showTotals(e),
      viewers: (e) => this.showViewers(e.count),
      goal: (e) => this.showGoal(e),
      goal_reached: () => { this.goal.reached(); toast(t("Goal reached!")); },
      battle: (e) => this.onBattle(e),
      battle_ended: (e) => { if (this.battleEvent) this.onBattle({ ...this.battleEvent, ...e, status: "ended" }); },
      stream_ended: () => location.reload(), // ended elsewhere (another tab, an operator)
    };
  }

  showTotals(board) {
    $("stream-coins").textContent = fmt(board.coins);
    $("stream-diamonds").textContent = fmt(board.diamonds);
    $("stream-coins").dataset.value = String(board.coins);
    $("stream-diamonds").dataset.value = String(board.diamonds);
    this.board.update(board.top);
  }

  showViewers(count) { $("stat-viewers").textContent = fmt(count); }

  showGoal(goal) {
    const set = Boolean(goal && goal.goal_id !== null);
    this.goal.update(goal);
    $("goal-none").hidden = set;
    $("goal-clear").disabled = !set;
  }

  tick() {
    $("stat-gpm").textContent = fmt(this.rate.perMinute());
    $("lane-empty").hidden = $("lane").childElementCount > 0;
    const s = Math.max(0, Math.floor(Date.now() / 1000 - boot.started_at_us / 1e6));
    const [h, m] = [Math.floor(s / 3600), Math.floor((s % 3600) / 60)];
    const mmss = `${String(m).padStart(h ? 2 : 1, "0")}:${String(s % 60).padStart(2, "0")}`;
    $("uptime").textContent = h ? `${h}:${mmss}` : mmss;
  }
}

// ---- the goal ---------------------------------------------------------------------------
function setUpGoal() {
  const form = $("goal-form");
  const gift = form.elements.gift_id;
  const kindChanged = () => {
    const coins = form.elements.kind.value === "coins";
    gift.disabled = !coins; // a likes goal counts likes, whatever the gift
    $("goal-gift-label").classList.toggle("muted", !coins);
  };
  for (const radio of form.elements.kind) radio.addEventListener("change", kindChanged);
  kindChanged();
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!form.reportValidity()) return;
    const body = {
      kind: form.elements.kind.value,
      target: Number(form.elements.target.value),
      title: form.elements.title.value.trim(),
    };
    if (body.kind === "coins" && gift.value) body.gift_id = gift.value;
    await submitting(form, async () => {
      await api("PUT", `/v1/streams/${encodeURIComponent(streamId)}/goal`, body);
      toast(t("Goal saved")); // the room's goal event draws it, with its progress
    }, { byCode: BY_CODE });
  });
  $("goal-clear").addEventListener("click", async () => {
    try {
      await api("DELETE", `/v1/streams/${encodeURIComponent(streamId)}/goal`);
      toast(t("Goal cleared"));
    } catch (err) {
      toast(problemText(err, BY_CODE), { kind: "error" });
    }
  });
}

// ---- battles ----------------------------------------------------------------------------
function setUpBattles(room) {
  const form = $("challenge-form");
  const opponent = $("opponent");
  const errorBox = $("battle-error");
  let current = null; // the room's battle event, or null
  // The invitation at the top of the window, the title, the sound (battle_alert.js).
  const alert = new BattleAlert({
    accept: () => act(battlePath("accept")),
    decline: () => act(battlePath("decline")),
  });

  const asEvent = (b) => ({
    battle_id: b.id,
    status: b.status,
    sides: b.sides,
    duration_s: b.duration_s,
    invitation_expires_at_us: b.invitation_expires_at_us,
    starts_at_us: b.starts_at_us,
    ends_at_us: b.ends_at_us,
    winner: b.winner,
  });

  function show(event) {
    current = event && event.battle_id !== null ? event : null;
    room.battleEvent = current;
    const pending = current?.status === "pending";
    const invited = pending && current.sides[1].stream_id === streamId;
    room.battle.update(pending ? null : current); // an invitation is answered, not scored
    $("battle-invite").hidden = !invited;
    if (!invited) alert.hide();
    $("battle-waiting").hidden = !pending || invited;
    $("battle-end").hidden = current?.status !== "active";
    form.hidden = pending || current?.status === "active";
    drawInvitation();
  }
  room.onBattle = show;

  const secondsToAnswer = () =>
    Math.max(0, Math.ceil((current.invitation_expires_at_us / 1000 - Date.now()) / 1000));

  function drawInvitation() {
    if (current?.status !== "pending") return;
    const seconds = secondsToAnswer();
    const [a, b] = current.sides;
    const minutes = Math.floor(current.duration_s / 60);
    const duration = `${minutes}:${String(current.duration_s % 60).padStart(2, "0")}`;
    const inviteText = t("{handle} challenges you to a battle of {duration}", { handle: a.handle, duration });
    const timeText = t("Answer within {seconds} s", { seconds });
    document.querySelector(".battle-invite-text").textContent = inviteText;
    document.querySelector(".battle-invite-time").textContent = timeText;
    if (b.stream_id === streamId) alert.show(current.battle_id, inviteText, timeText);
    document.querySelector(".battle-waiting-text").textContent =
      t("Waiting for {handle} to answer ({seconds} s)", { handle: b.handle, seconds });
  }
  // The room announces an invitation's expiry; should that be missed, ask once it is overdue.
  let askedAbout = null;
  setInterval(() => {
    drawInvitation();
    const overdue = current?.status === "pending" && Date.now() * 1000 > current.invitation_expires_at_us + 5e6;
    if (overdue && askedAbout !== current.battle_id) {
      askedAbout = current.battle_id;
      refresh();
    }
  }, 1000);

  /** The stream's battle as the server has it now (the room's snapshot brings it at first). */
  async function refresh() {
    try {
      show(asEvent(await api("GET", `/v1/streams/${encodeURIComponent(streamId)}/battle`)));
    } catch (err) {
      if (err.code === "no_battle") show(current?.status === "pending" ? null : current);
    }
  }

  async function act(path) {
    errorBox.hidden = true;
    try {
      show(asEvent(await api("POST", path)));
    } catch (err) {
      showError(errorBox, err);
      refresh();
    }
  }
  const battlePath = (verb) => `/v1/battles/${current.battle_id}/${verb}`;
  $("battle-accept").addEventListener("click", () => act(battlePath("accept")));
  $("battle-decline").addEventListener("click", () => act(battlePath("decline")));
  $("battle-withdraw").addEventListener("click", () => act(battlePath("end")));
  $("battle-end").addEventListener("click", () => act(battlePath("end")));

  async function loadOpponents() {
    const others = (await api("GET", "/v1/streams")).filter((s) => s.id !== streamId);
    const chosen = opponent.value;
    opponent.replaceChildren();
    const first = new Option(others.length ? t("Pick a stream to challenge") : t("Nobody else is live right now"), "");
    opponent.append(first);
    for (const s of others) {
      const option = new Option(`@${s.creator_handle} · ${s.title}`, s.id);
      option.selected = s.id === chosen;
      opponent.append(option);
    }
  }
  $("opponents-refresh").addEventListener("click", () => loadOpponents().catch(() => {}));
  loadOpponents().catch(() => {});

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!form.reportValidity()) return;
    errorBox.hidden = true;
    await submitting(form, async () => {
      try {
        const battle = await api("POST", "/v1/battles", {
          stream_id: streamId,
          opponent_stream_id: opponent.value,
          duration_s: Number(form.elements.duration_s.value),
        });
        show(asEvent(battle));
        toast(t("Challenge sent"));
      } catch (err) {
        if (err.code === "stream_not_live") loadOpponents().catch(() => {});
        if (err.code === "battle_in_progress") refresh();
        throw err;
      }
    }, { byCode: BY_CODE });
  });
}

// Shares and the people they brought, beside the gifts: read every 15 s (they are not room
// events; docs/sharing.md).
const SHARERS_EVERY_MS = 15_000;

async function sharers() {
  try {
    const found = await api("GET", `/v1/streams/${encodeURIComponent(streamId)}/sharers`);
    $("stat-shares").textContent = fmt(found.shares);
    const list = $("sharers");
    list.replaceChildren();
    for (const row of found.top) {
      const li = rankedRow(row, fmt(row.unique_visitors));
      li.querySelector(".amount").title = t("Visitors: {count}", { count: fmt(row.unique_visitors) });
      list.append(li);
    }
    $("sharers-empty").hidden = found.top.length > 0;
  } catch (_) { /* the next round tries again */ }
}

if (streamId) {
  live();
  sharers();
  setInterval(sharers, SHARERS_EVERY_MS);
}
