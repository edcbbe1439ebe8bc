// The admin risk queue: each flag with its rule, evidence and the users, gifts, top-ups and
// payouts it names; clear, hold or freeze through the admin JSON API (/v1/admin/risk).

import { api, fmt, locale, t, toast } from "./site.js";

const when = new Intl.DateTimeFormat(locale === "ar" ? "ar-u-nu-latn" : locale, {
  dateStyle: "medium",
  timeStyle: "short",
});
const dateOf = (us) => when.format(new Date(us / 1000));
const list = document.getElementById("risk-flags");
const empty = document.getElementById("risk-empty");
const filter = document.getElementById("risk-filter");

const RULES = {
  card_testing: () => t("Card testing"),
  funnel: () => t("Funnel of new accounts"),
  fast_cycle: () => t("Gift-to-payout cycle too fast"),
  chargebacks: () => t("Gifters' chargebacks"),
  refund_after_gift: () => t("Refund right after gifting"),
  shared_card: () => t("One card, many accounts"),
};
const STATES = {
  open: () => t("Open"),
  held: () => t("Held"),
  frozen: () => t("Frozen"),
  cleared: () => t("Cleared"),
};
const SEVERITY = { low: () => t("Low"), medium: () => t("Medium"), high: () => t("High") };

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, props);
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

const userLink = (u) => el("a", { href: `/@${encodeURIComponent(u.handle)}`, textContent: `@${u.handle}` });

function section(title, items, render) {
  if (!items.length) return null;
  return el("div", { className: "risk-linked" }, el("h4", { textContent: title }), el("ul", {}, ...items.map((x) => el("li", {}, ...render(x)))));
}

function facts(flag) {
  const ev = flag.evidence;
  const rows = [];
  const add = (label, value) => rows.push(el("dt", { textContent: label }), el("dd", { textContent: String(value) }));
  if (ev.accounts !== undefined) add(t("Accounts"), fmt(ev.accounts));
  if (ev.failures !== undefined) add(t("Failed top-ups"), ev.failures);
  if (ev.coins !== undefined) add(t("Coins"), t("{coins} of {total}", { coins: ev.coins, total: ev.creator_coins }));
  if (ev.cycle_s !== undefined) add(t("Cycle"), t("{minutes} min", { minutes: Math.round(ev.cycle_s / 60) }));
  if (ev.rate_pct !== undefined) add(t("Chargeback rate"), `${ev.rate_pct}%`);
  if (ev.window) add(t("Window"), `${dateOf(ev.window.from_us)} – ${dateOf(ev.window.to_us)}`);
  return el("dl", { className: "risk-facts" }, ...rows);
}

function card(view) {
  const { flag } = view;
  const who = view.user ? userLink(view.user) : el("span", { textContent: `#${flag.user_id}` });
  const title = el("h3", {}, (RULES[flag.rule] || (() => flag.kind))(), " · ", who);
  const badge = el("span", { className: `badge state-${flag.state}`, textContent: STATES[flag.state]() });
  const severity = el("span", { className: `badge severity-${flag.severity}`, textContent: (SEVERITY[flag.severity] || (() => flag.severity))() });
  const opened = el("p", { className: "muted", textContent: t("Raised {time}", { time: dateOf(flag.opened_at_us) }) });
  const parts = [
    section(t("Users"), view.users, (u) => [userLink(u), " ", el("span", { className: "muted", textContent: t("joined {time}", { time: dateOf(u.created_at_us) }) })]),
    section(t("Gifts"), view.gifts, (g) => [el("a", { href: `/live/${encodeURIComponent(g.stream_id)}`, textContent: `#${g.id}` }), ` ${g.gift_id} · ${g.coins} · ${dateOf(g.created_at_us)}`]),
    section(t("Top-ups"), view.top_ups, (o) => [el("a", { href: `/admin#gifts`, textContent: o.id }), ` ${o.coins} · ${(STATES[o.status] || (() => o.status))()} · ${dateOf(o.created_at_us)}`]),
    section(t("Payouts"), view.payouts, (p) => [el("a", { href: "/admin#payouts", textContent: p.id }), ` ${p.diamonds} · ${p.status} · ${dateOf(p.requested_at_us)}`]),
  ];
  const actions = el("div", { className: "risk-actions" });
  if (flag.state !== "cleared") {
    for (const [decision, label] of [["hold", t("Hold")], ["freeze", t("Freeze")], ["clear", t("Clear")]]) {
      const b = el("button", { type: "button", className: decision === "freeze" ? "small danger" : "small", textContent: label });
      b.dataset.decision = decision;
      b.addEventListener("click", () => decide(flag.id, decision, b));
      actions.append(b);
    }
  }
  const item = el("li", { className: "risk-flag card-panel" }, title, el("p", {}, badge, " ", severity), opened, facts(flag), ...parts, actions);
  item.dataset.flag = String(flag.id);
  item.dataset.rule = flag.rule || flag.kind;
  return item;
}

async function decide(id, decision, button) {
  button.disabled = true;
  try {
    await api("POST", `/v1/admin/risk/${id}/decision`, { decision });
    toast({ hold: t("Flag held: payouts keep waiting"), freeze: t("Account frozen"), clear: t("Flag cleared") }[decision]);
    await load();
  } catch (err) {
    toast(err.message, { kind: "error", ms: 6000 });
  } finally {
    button.disabled = false;
  }
}

async function load() {
  const state = new FormData(filter).get("state");
  const query = state ? `?state=${encodeURIComponent(state)}` : "";
  try {
    const views = await api("GET", `/v1/admin/risk${query}`);
    list.replaceChildren(...views.map(card));
    empty.hidden = views.length > 0;
  } catch (err) {
    toast(err.message, { kind: "error", ms: 6000 });
  } finally {
    list.removeAttribute("aria-busy");
  }
}

filter.addEventListener("change", load);
load();
