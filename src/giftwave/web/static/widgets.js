// Pieces of a room shared by the viewer page, the embed, the OBS overlay and the creator studio:
// the lane of gift alerts with their combo counters, the top gifters, the goal and battle bars.

import { fmt, t, tn } from "./site.js";

export const BIG_GIFT_COINS = 1000;

export class Catalogue {
  constructor(gifts) { this.gifts = new Map((gifts || []).map((g) => [g.gift_id, g])); }
  name(id) { return this.gifts.get(id)?.name ?? id; }
  image(id) { return this.gifts.get(id)?.image; }
  price(id) { return this.gifts.get(id)?.price_coins ?? 0; }
}

/** Gift alerts, newest first, one per combo; its counter grows (`x57`) as the combo does. */
export class GiftLane {
  constructor(list, catalogue, { max = 6, finalMs = 4000, bigMs = 8000, onNew = () => {} } = {}) {
    this.list = list;
    this.catalogue = catalogue;
    this.max = max;
    this.finalMs = finalMs;
    this.bigMs = bigMs;
    this.onNew = onNew;
    this.shown = new Map(); // combo_id -> <li>
    this.byNumber = new Map(); // the room's short number of a combo -> combo_id
    // Which alerts fit is measured again whenever the band or an alert changes size, not only
    // when one comes or goes: a room's snapshot draws its open combos before the goal and battle
    // bars above the band, which then shrink it; an alert's counter is written after it is
    // placed. Measured only then, the oldest alert stayed drawn over the battle bar.
    this.resized = new ResizeObserver(() => this.fit());
    this.resized.observe(this.list);
  }

  alertFor(event) {
    let li = this.shown.get(event.combo_id);
    if (li) return li;
    li = document.createElement("li");
    li.className = "alert";
    li.dataset.combo = event.combo_id;
    li.dataset.gift = event.gift_id;
    li.dataset.sender = String(event.sender_id);
    const icon = document.createElement("img");
    icon.className = "gift-icon";
    icon.alt = "";
    const image = this.catalogue.image(event.gift_id);
    if (image) icon.src = image; else icon.hidden = true;
    const text = document.createElement("span");
    text.className = "text";
    const who = document.createElement("bdi");
    who.textContent = event.sender;
    text.append(who, ` · ${this.catalogue.name(event.gift_id)}`);
    const count = document.createElement("bdi");
    count.className = "count";
    count.dir = "ltr";
    li.append(icon, text, count);
    this.list.prepend(li);
    this.resized.observe(li);
    this.shown.set(event.combo_id, li);
    while (this.list.children.length > this.max) this.drop(this.list.lastElementChild);
    this.fit();
    return li;
  }

  /** In a band of fixed height (the stage's), the oldest alerts with no room left are hidden
   *  whole rather than cut in half at the band's edge. */
  fit() {
    const top = this.list.getBoundingClientRect().top;
    for (const li of this.list.children) li.classList.toggle("clipped", li.getBoundingClientRect().top < top - 1);
  }

  setCount(li, count, coins) {
    const before = Number(li.dataset.count || 0);
    li.querySelector(".count").textContent = `x${count}`;
    li.dataset.count = String(count);
    const price = this.catalogue.price(li.dataset.gift) || coins / Math.max(count, 1);
    li.classList.toggle("big", price >= BIG_GIFT_COINS);
    if (count > before) {
      li.classList.remove("bump");
      void li.offsetWidth; // restart the bump animation
      li.classList.add("bump");
    }
    return count - before;
  }

  drop(li) {
    if (!li) return;
    this.shown.delete(li.dataset.combo);
    this.resized.unobserve(li);
    li.remove();
    this.fit();
  }

  /** A `gift` event; returns how many gifts it added to what this lane showed. */
  gift(event) {
    this.byNumber.set(event.n, event.combo_id);
    const isNew = !this.shown.has(event.combo_id);
    const li = this.alertFor(event);
    const added = this.setCount(li, event.count, event.coins);
    if (isNew) this.onNew(event);
    if (event.final && !li.dataset.final) {
      li.dataset.final = "1";
      const big = this.catalogue.price(event.gift_id) >= BIG_GIFT_COINS;
      setTimeout(() => {
        li.classList.add("done");
        setTimeout(() => this.drop(li), 600);
      }, big ? this.bigMs : this.finalMs);
    }
    return added;
  }

  /** A `combo_counts` event; calls `grew(event-like, added)` for each combo that grew. */
  counts(event, grew = () => {}) {
    for (const [n, count, coins] of event.counts) {
      const comboId = this.byNumber.get(n);
      const li = this.shown.get(comboId);
      if (!li) continue;
      const added = this.setCount(li, count, coins);
      if (added > 0) grew({ combo_id: comboId, gift_id: li.dataset.gift, count, coins }, added);
    }
  }

  snapshot(snap) {
    for (const li of [...this.list.children]) this.drop(li);
    this.byNumber.clear(); // numbers are per epoch: the snapshot's combos bring theirs
    for (const combo of snap.combos) this.gift(combo);
  }
}

/** The room's top gifters, from a `leaderboard` event's `top`. */
/** One row of a ranked board (top gifters, top sharers): rank, handle, a formatted amount. */
/** A gifter's level badge ("12", titled "Level 12"), or null when none is shown. */
export function levelBadge(level) {
  if (!level) return null;
  const badge = document.createElement("span");
  badge.className = "level-badge";
  badge.dataset.level = String(level);
  badge.title = t("Level {level}", { level });
  badge.setAttribute("aria-label", badge.title);
  badge.textContent = String(level);
  return badge;
}

/** A subscriber's badge ("★ 3", titled "Subscriber for 3 months"), or null for none. */
export function subBadge(months) {
  if (!months) return null;
  const badge = document.createElement("span");
  badge.className = "sub-badge";
  badge.dataset.months = String(months);
  badge.title = tn("Subscriber for {n} month", months);
  badge.setAttribute("aria-label", badge.title);
  badge.textContent = `★ ${fmt(months)}`;
  return badge;
}

/** "ana gifted 5 subs!" and each recipient with their badge (a `subs_gifted` event). */
export function subsGiftedLine(e, tag = "li") {
  const line = document.createElement(tag);
  line.className = "subs-gifted";
  line.dataset.gift = e.gift_id;
  const said = document.createElement("bdi");
  said.className = "said";
  said.textContent = tn("{handle} gifted {n} subscription!", e.count, { handle: e.buyer });
  const to = document.createElement("span");
  to.className = "recipients";
  to.append(t("Received by:"));
  for (const r of e.recipients) {
    const who = document.createElement("bdi");
    who.className = "recipient";
    who.dataset.user = String(r.user_id);
    who.textContent = r.handle;
    to.append(" ", who);
    const badge = subBadge(r.months);
    if (badge) to.append(" ", badge);
  }
  line.append(said, " ", to);
  return line;
}

export function rankedRow(row, amount) {
  const li = document.createElement("li");
  li.dataset.user = String(row.user_id);
  const rank = document.createElement("span");
  rank.className = "rank";
  rank.textContent = String(row.rank);
  const who = document.createElement("bdi");
  who.className = "who";
  who.textContent = row.handle;
  const value = document.createElement("bdi");
  value.className = "amount";
  value.textContent = amount;
  const badge = levelBadge(row.level); // inside the name's cell: the row keeps its columns
  if (badge) who.prepend(badge, " ");
  const sub = subBadge(row.sub_months);
  if (sub) who.append(" ", sub);
  li.append(rank, who, value);
  return li;
}

export class TopGifters {
  constructor(list) { this.list = list; }

  update(top) {
    const list = this.list;
    if (!list) return;
    list.replaceChildren();
    if (!top.length) {
      const li = document.createElement("li");
      li.className = "empty-row muted";
      li.textContent = t("Be the first to gift");
      list.append(li);
      return;
    }
    for (const row of top) {
      const li = rankedRow(row, fmt(row.coins));
      li.dataset.coins = String(row.coins);
      list.append(li);
    }
  }
}

export class GoalBar {
  constructor(box) { this.box = box; }

  update(goal) {
    const box = this.box;
    if (!box) return;
    if (!goal || goal.goal_id === null) { box.hidden = true; return; }
    box.hidden = false;
    const pct = Math.min(100, (100 * goal.progress) / goal.target);
    box.querySelector(".goal-title").textContent = goal.title;
    box.querySelector(".goal-fill").style.width = `${pct}%`;
    const numbers = `${fmt(goal.progress)} / ${fmt(goal.target)}`;
    box.querySelector(".goal-track").setAttribute("aria-valuenow", String(Math.floor(pct)));
    box.querySelector(".goal-track").setAttribute("aria-valuetext", numbers);
    box.querySelector(".goal-numbers").textContent = numbers;
    this.mark(goal.reached);
  }

  /** Reached stays shown (a mark beside the numbers, the bar in gold), not just a toast. */
  mark(reached) {
    this.box?.classList.toggle("reached", Boolean(reached));
    const done = this.box?.querySelector(".goal-done");
    if (done) done.hidden = !reached;
  }

  reached() { this.mark(true); }
}

export class BattleBar {
  constructor(box) {
    this.box = box;
    this.battle = null;
    if (box) setInterval(() => this.drawTimer(), 250);
  }

  update(event) {
    const box = this.box;
    if (!box) return;
    if (!event || event.battle_id === null || ["declined", "expired"].includes(event.status)) {
      this.battle = null;
      box.hidden = true;
      return;
    }
    this.battle = event;
    box.hidden = false;
    const [a, b] = event.sides;
    for (const [i, side] of event.sides.entries()) {
      const el = box.querySelector(i === 0 ? ".battle-side.a" : ".battle-side.b");
      el.querySelector(".name").textContent = side.handle;
      el.querySelector(".score").textContent = fmt(side.score);
    }
    const total = a.score + b.score;
    box.querySelector(".battle-fill").style.width = `${total ? (100 * a.score) / total : 50}%`;
    this.drawTimer();
  }

  ended(event) {
    if (this.battle) this.update({ ...this.battle, ...event, status: "ended" });
  }

  drawTimer() {
    const battle = this.battle;
    if (!battle) return;
    const timer = this.box.querySelector(".battle-timer");
    if (battle.winner) {
      const side = battle.sides[battle.winner === "a" ? 0 : 1];
      timer.textContent = battle.winner === "draw" ? t("Draw") : t("{name} wins", { name: side.handle });
      return;
    }
    const now = Date.now();
    if (battle.starts_at_us && battle.starts_at_us / 1000 > now) {
      timer.textContent = t("Starts in {seconds}", { seconds: Math.ceil((battle.starts_at_us / 1000 - now) / 1000) });
      return;
    }
    const left = battle.ends_at_us ? Math.max(0, battle.ends_at_us / 1000 - now) : 0;
    const s = Math.ceil(left / 1000);
    timer.textContent = `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
  }
}

/** Paid highlighted messages pinned above the chat (docs/protocol.md): each coloured by its
 *  tier (a `paid-<colour>` class), taken down at its `pinned_until_us` or when a moderator
 *  hides it, the dearest first. */
export class PaidPins {
  constructor(list) {
    this.list = list;
    this.timers = new Map(); // send_id -> timeout that takes it down
  }

  snapshot(snap) {
    if (!this.list) return;
    for (const id of [...this.timers.keys()]) this.hide(id);
    for (const m of snap.paid_messages || []) this.add(m);
  }

  add(m) {
    if (!this.list || this.timers.has(m.send_id)) return;
    const leftMs = m.pinned_until_us / 1000 - Date.now();
    if (leftMs <= 0) return;
    const li = document.createElement("li");
    li.className = `paid paid-${m.colour}`;
    li.dataset.send = m.send_id;
    li.dataset.tier = String(m.tier);
    const head = document.createElement("span");
    head.className = "paid-head";
    const who = document.createElement("bdi");
    who.className = "who";
    who.textContent = m.sender;
    const coins = document.createElement("bdi");
    coins.className = "paid-coins";
    coins.textContent = tn("{n} coin", m.coins);
    const badge = levelBadge(m.level);
    if (badge) head.append(badge, " ");
    head.append(who, " · ", coins);
    const text = document.createElement("bdi");
    text.className = "paid-text";
    text.textContent = m.text;
    li.append(head, text);
    // The dearest tier first; within a tier, the oldest first (it goes first too).
    const after = [...this.list.children].find((x) => Number(x.dataset.tier) < m.tier);
    this.list.insertBefore(li, after || null);
    this.timers.set(m.send_id, setTimeout(() => this.hide(m.send_id), Math.min(leftMs, 2 ** 31 - 1)));
    this.list.hidden = false;
  }

  hide(sendId) {
    if (!this.list) return;
    clearTimeout(this.timers.get(sendId));
    this.timers.delete(sendId);
    this.list.querySelector(`li[data-send="${CSS.escape(sendId)}"]`)?.remove();
    this.list.hidden = this.list.children.length === 0;
  }
}
