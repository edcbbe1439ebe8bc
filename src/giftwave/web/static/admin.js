// The admin console: one section at a time (the address's #hash), each loaded when first
// shown, every action through the admin JSON API; a refusal is the API's problem, in a toast.

import { api, boot, fmt, locale, money, t, toast } from "./site.js";

const when = new Intl.DateTimeFormat(locale === "ar" ? "ar-u-nu-latn" : locale, {
  dateStyle: "medium",
  timeStyle: "short",
});
const dateOf = (us) => when.format(new Date(us / 1000));
const fail = (err) => toast(err.message, { kind: "error", ms: 6000 });
const YES_NO = (v) => (v ? t("Yes") : t("No"));

/** An element: el("td", { className: "x", dataset: { a: "1" } }, "text", otherNode). */
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  const { dataset, ...rest } = props;
  Object.assign(node, rest);
  if (dataset) Object.assign(node.dataset, dataset);
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

const button = (label, onClick, props = {}) => {
  const b = el("button", { type: "button", className: "small", textContent: label, ...props });
  b.addEventListener("click", () => onClick(b));
  return b;
};

/** Disable while a call is out, so a double click does not send it twice. */
async function busy(control, work) {
  control.disabled = true;
  try {
    return await work();
  } catch (err) {
    fail(err);
    return undefined;
  } finally {
    control.disabled = false;
  }
}

function fillTable(table, rows, emptyText) {
  const body = table.tBodies[0];
  body.removeAttribute("aria-busy");
  if (!rows.length) {
    const cols = table.tHead.rows[0].cells.length;
    body.replaceChildren(el("tr", { className: "empty-row" }, el("td", { colSpan: cols, textContent: emptyText })));
    return;
  }
  body.replaceChildren(...rows);
}

// --- confirm dialog ----------------------------------------------------------------------

const confirmBox = document.getElementById("confirm-dialog");

/** Ask before an action that moves value or locks someone out; resolves {ok, note}. */
function ask(text, { note = false, okLabel = "" } = {}) {
  confirmBox.querySelector("#confirm-text").textContent = text;
  const noteLabel = confirmBox.querySelector(".note");
  noteLabel.hidden = !note;
  noteLabel.querySelector("input").value = "";
  confirmBox.querySelector(".confirm-ok").textContent = okLabel || confirmBox.dataset.ok || "OK";
  confirmBox.returnValue = "cancel";
  confirmBox.showModal();
  return new Promise((resolve) => {
    confirmBox.addEventListener(
      "close",
      () => resolve({ ok: confirmBox.returnValue === "ok", note: noteLabel.querySelector("input").value.trim() }),
      { once: true },
    );
  });
}
confirmBox.dataset.ok = confirmBox.querySelector(".confirm-ok").textContent;

// --- catalogue -----------------------------------------------------------------------------

const giftDialog = document.getElementById("gift-dialog");
const giftForm = document.getElementById("gift-form");
let giftNames = {}; // gift_id -> name in the page's language, for the gift list
let editing = null;

/** datetime-local's value for a time in µs, in the browser's zone; "" for none. */
function localInput(us) {
  if (us === null || us === undefined) return "";
  const d = new Date(us / 1000);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

function windowText(g) {
  const start = g.available_from_us === null ? null : dateOf(g.available_from_us);
  const end = g.available_until_us === null ? null : dateOf(g.available_until_us);
  if (start && end) return t("{start} to {end}", { start, end });
  if (start) return t("From {start}", { start });
  if (end) return t("Until {end}", { end });
  return t("Always");
}

function giftRow(g) {
  const name = g.names[locale] || g.name;
  return el(
    "tr",
    { dataset: { gift: g.gift_id, version: String(g.version), price: String(g.price_coins) } },
    el("td", { className: "gift-cell" },
      el("img", { src: g.image, alt: "", width: 32, height: 32, loading: "lazy" }),
      el("span", {}, el("bdi", { textContent: name }), el("small", { className: "muted", textContent: g.gift_id }))),
    el("td", { className: "version", textContent: `v${g.version}` }),
    el("td", { className: "num price" }, el("span", { className: "coin", ariaHidden: "true" }), " ", fmt(g.price_coins)),
    el("td", { textContent: YES_NO(g.combo) }),
    el("td", { textContent: YES_NO(g.on_sale), className: g.on_sale ? "" : "off" }),
    el("td", { textContent: windowText(g) }),
    el("td", { className: "actions" }, button(t("Edit"), () => openGift(g), { className: "small edit" })),
  );
}

async function loadGifts() {
  const gifts = await api("GET", "/v1/admin/gifts");
  giftNames = Object.fromEntries(gifts.map((g) => [g.gift_id, g.names[locale] || g.name]));
  fillTable(document.getElementById("gift-table"), gifts.map(giftRow), "");
}

function openGift(g) {
  editing = g;
  const f = giftForm.elements;
  giftDialog.querySelector(".gift-id").textContent = g.gift_id;
  f.price_coins.value = g.price_coins;
  for (const code of boot.gift_locales) f[`name_${code}`].value = g.names[code] || "";
  f.on_sale.checked = g.on_sale;
  f.combo.checked = g.combo;
  f.available_from.value = localInput(g.available_from_us);
  f.available_until.value = localInput(g.available_until_us);
  giftDialog.showModal();
  f.price_coins.focus();
}

/** Only what changed: the API makes a new version for any change, and none for none. */
function giftChanges(g) {
  const f = giftForm.elements;
  const changes = {};
  const price = Number(f.price_coins.value);
  if (price !== g.price_coins) changes.price_coins = price;
  const names = {};
  for (const code of boot.gift_locales) {
    const v = f[`name_${code}`].value.trim();
    if (v) names[code] = v;
  }
  if (JSON.stringify(names) !== JSON.stringify(Object.fromEntries(boot.gift_locales.filter((c) => g.names[c]).map((c) => [c, g.names[c]])))) {
    changes.names = names;
  }
  if (f.on_sale.checked !== g.on_sale) changes.on_sale = f.on_sale.checked;
  if (f.combo.checked !== g.combo) changes.combo = f.combo.checked;
  for (const [input, field] of [["available_from", "available_from_us"], ["available_until", "available_until_us"]]) {
    if (f[input].value !== localInput(g[field])) {
      changes[field] = f[input].value ? new Date(f[input].value).getTime() * 1000 : null;
    }
  }
  return changes;
}

giftForm.addEventListener("submit", async (e) => {
  e.preventDefault();
  if (!giftForm.reportValidity() || !editing) return;
  const changes = giftChanges(editing);
  if (!Object.keys(changes).length) {
    toast(t("Nothing changed"));
    giftDialog.close();
    return;
  }
  const submit = giftForm.querySelector("button[type=submit]");
  const saved = await busy(submit, () => api("PUT", `/v1/admin/gifts/${encodeURIComponent(editing.gift_id)}`, changes));
  if (!saved) return;
  giftDialog.close();
  toast(t("Saved: {gift} is now version {version}", { gift: saved.names[locale] || saved.name, version: saved.version }));
  await loadGifts().catch(fail);
});
giftForm.querySelector(".cancel").addEventListener("click", () => giftDialog.close());

function packageRow(p) {
  const price = el("input", {
    type: "number", min: 1, max: 1e9, step: 1, value: p.price_minor, required: true, className: "price-input",
  });
  price.setAttribute("aria-label", `${p.currency} ${fmt(p.coins)}`);
  const shown = el("small", { className: "muted", textContent: money(p.price_minor, p.currency) });
  price.addEventListener("input", () => { shown.textContent = money(Number(price.value) || 0, p.currency); });
  const active = el("input", { type: "checkbox", checked: p.active });
  active.setAttribute("aria-label", `${p.currency} ${fmt(p.coins)}`);
  const save = button(t("Save"), (b) => busy(b, async () => {
    if (!price.reportValidity()) return;
    await api("PUT", "/v1/admin/coin-packages", {
      currency: p.currency, coins: p.coins, price_minor: Number(price.value), active: active.checked,
    });
    toast(t("Package saved"));
  }));
  return el(
    "tr",
    { dataset: { currency: p.currency, coins: String(p.coins) } },
    el("td", { textContent: p.currency }),
    el("td", { className: "num", textContent: fmt(p.coins) }),
    el("td", {}, price, " ", shown),
    el("td", {}, active),
    el("td", { className: "actions" }, save),
  );
}

async function loadPackages() {
  const packages = await api("GET", "/v1/admin/coin-packages");
  fillTable(document.getElementById("package-table"), packages.map(packageRow), "");
}

document.getElementById("package-add").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = e.currentTarget;
  if (!form.reportValidity()) return;
  const data = new FormData(form);
  const done = await busy(form.querySelector("button"), () => api("PUT", "/v1/admin/coin-packages", {
    currency: String(data.get("currency")).trim().toUpperCase(),
    coins: Number(data.get("coins")),
    price_minor: Number(data.get("price_minor")),
    active: true,
  }));
  if (!done) return;
  toast(t("Package saved"));
  form.reset();
  await loadPackages().catch(fail);
});

// --- users ---------------------------------------------------------------------------------

const ROLE_NAMES = { viewer: "Viewer", creator: "Creator", admin: "Admin" };

async function changeUser(user, change, message) {
  const updated = await api("PATCH", `/v1/admin/users/${user.id}`, change);
  toast(t(message, { handle: updated.handle }));
  return updated;
}

function userRow(u) {
  const row = el("tr", { dataset: { user: String(u.id), status: u.status, role: u.role } });
  const replace = (updated) => { if (updated) row.replaceWith(userRow(updated)); };
  const frozen = u.status === "blocked";
  const role = el("select", { className: "role" });
  role.setAttribute("aria-label", t("Role of @{handle}", { handle: u.handle }));
  for (const [value, label] of Object.entries(ROLE_NAMES)) {
    role.append(el("option", { value, textContent: t(label), selected: value === u.role }));
  }
  role.addEventListener("change", async () => {
    const wanted = role.value;
    const { ok } = await ask(t("Make @{handle} a {role}?", { handle: u.handle, role: t(ROLE_NAMES[wanted]) }));
    if (!ok) { role.value = u.role; return; }
    replace(await busy(role, () => changeUser(u, { role: wanted }, "@{handle} updated")));
  });
  const freeze = button(frozen ? t("Unfreeze") : t("Freeze"), async (b) => {
    if (!frozen) {
      const { ok } = await ask(t("Freeze @{handle}? They cannot buy, gift or cash out until unfrozen.", { handle: u.handle }), { okLabel: t("Freeze") });
      if (!ok) return;
    }
    const status = frozen ? "active" : "blocked";
    replace(await busy(b, () => changeUser(u, { status }, frozen ? "@{handle} is active again" : "@{handle} is frozen")));
  }, { className: frozen ? "small freeze" : "small freeze danger" });
  const age = button(u.age_verified ? t("Undo age check") : t("Verify age"), async (b) => {
    replace(await busy(b, () => changeUser(u, { age_verified: !u.age_verified }, "@{handle} updated")));
  }, { className: "small age" });
  row.append(
    el("td", {}, el("bdi", { className: "who", textContent: `@${u.handle}` }), el("br"),
      el("bdi", { className: "muted small", textContent: `#${u.id}${u.email ? ` · ${u.email}` : ""} · ${u.country}` })),
    el("td", {}, role),
    el("td", {}, el("span", { className: `badge ${frozen ? "bad" : "good"}`, textContent: frozen ? t("Frozen") : t("Active") })),
    el("td", { textContent: u.age_verified ? t("Verified") : t("Not verified") }),
    el("td", { className: "actions" }, freeze, age),
  );
  return row;
}

document.getElementById("user-search").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = e.currentTarget;
  if (!form.reportValidity()) return;
  const q = String(new FormData(form).get("q")).trim();
  const users = await busy(form.querySelector("button"), () => api("GET", `/v1/admin/users?q=${encodeURIComponent(q)}&limit=50`));
  if (users) fillTable(document.getElementById("user-table"), users.map(userRow), t("No users match"));
});

// --- payouts -------------------------------------------------------------------------------

const PAYOUT_NAMES = {
  requested: "Requested", pending: "Pending", approved: "Approved", rejected: "Rejected", expired: "Expired", failed: "Failed",
  processing: "Being paid", paid: "Paid", returned: "Returned",
};
const payoutFilter = document.getElementById("payout-filter");
// Why a payout was decided as it was (economy/payout_policy.py Reason): the newest decision.
const DECISION_REASONS = {
  within_policy: "Within the auto-approval policy", policy_off: "Auto-approval is off",
  amount_not_below_limit: "Amount at or above the auto-approval limit", no_earnings: "No earnings yet",
  history_too_short: "Earning for too short a time", open_risk_flag: "Open risk flag",
  diamond_debt: "Diamond debt", recent_returned_payout: "A payout was returned recently",
  recent_reversed_gift: "A gift was reversed recently", manual_approval: "Approved by a person",
  manual_rejection: "Rejected by a person", review_timeout: "Nobody reviewed it in time",
};
const decisionText = (p) => {
  // A transfer event that did not match the payout: the operator must look first.
  if (p.flag) return t("A transfer event did not match this payout: check it at the provider");
  const last = (p.decisions || [])[0];
  return last ? last.reasons.map((r) => t(DECISION_REASONS[r] || r)).join(", ") : "";
};

// Whom the operator pays, as people know them: @handle; the id only when the account is gone.
const payeeName = (p) => (p.creator_handle ? `@${p.creator_handle}` : `#${p.creator_id}`);
// In a sentence, isolated (FSI … PDI), so a Latin handle keeps its order inside Arabic text.
const payee = (p) => `\u2068${payeeName(p)}\u2069`;

function payoutRow(p) {
  const amount = money(p.amount_minor, p.currency);
  const actions = el("td", { className: "actions" });
  if (p.status === "pending") {
    actions.append(
      button(t("Approve"), async (b) => {
        const { ok } = await ask(t("Approve paying {diamonds} diamonds ({amount}) to {creator}?", {
          diamonds: fmt(p.diamonds), amount, creator: payee(p),
        }), { okLabel: t("Approve") });
        if (ok && await busy(b, () => api("POST", `/v1/admin/payouts/${encodeURIComponent(p.id)}/approve`, {}))) {
          toast(t("Payout approved"));
          await loadPayouts().catch(fail);
        }
      }, { className: "small primary approve" }),
      button(t("Reject"), async (b) => {
        const { ok, note } = await ask(t("Reject this payout? The diamonds go back to {creator}.", { creator: payee(p) }), { note: true, okLabel: t("Reject") });
        if (ok && await busy(b, () => api("POST", `/v1/admin/payouts/${encodeURIComponent(p.id)}/reject`, note ? { note } : {}))) {
          toast(t("Payout rejected"));
          await loadPayouts().catch(fail);
        }
      }, { className: "small reject" }),
    );
  }
  return el(
    "tr",
    { dataset: { payout: p.id, status: p.status } },
    el("td", { textContent: dateOf(p.requested_at_us) }),
    el("td", { className: "payee" }, el("bdi", { textContent: payeeName(p) })),
    el("td", { className: "num" }, el("span", { className: "diamond", ariaHidden: "true" }), " ", fmt(p.diamonds)),
    el("td", { className: "num", textContent: amount }),
    el("td", { textContent: t(PAYOUT_NAMES[p.status] || p.status), title: p.note || "" }),
    el("td", { className: p.flag ? "decision flagged" : "decision", textContent: decisionText(p), title: p.flag || "" }),
    actions,
  );
}

async function loadPayouts() {
  const status = payoutFilter.elements.status.value;
  const payouts = await api("GET", `/v1/admin/payouts?status=${encodeURIComponent(status)}`);
  fillTable(document.getElementById("payout-table"), payouts.map(payoutRow), t("No payouts here"));
}
payoutFilter.addEventListener("change", () => loadPayouts().catch(fail));
payoutFilter.addEventListener("submit", (e) => { e.preventDefault(); loadPayouts().catch(fail); });

// --- gifts sent and top-ups ----------------------------------------------------------------

const sendFilter = document.getElementById("send-filter");
const ORDER_NAMES = {
  open: "Waiting for the payment…", paid: "Paid", failed: "The payment was declined", refunded: "Refunded",
  partly_refunded: "Partly refunded", disputed: "Disputed", mismatch: "Amount mismatch",
};

function sendRow(s) {
  const gift = giftNames[s.gift_id] || s.gift_id;
  const actions = el("td", { className: "actions" });
  if (!s.reversed) {
    actions.append(button(t("Reverse"), async (b) => {
      const { ok } = await ask(t("Reverse? @{sender} gets {coins} coins back, @{creator} returns {diamonds} diamonds.", {
        coins: fmt(s.coins), sender: s.sender_handle, creator: s.creator_handle, diamonds: fmt(s.diamonds),
      }), { okLabel: t("Reverse") });
      if (!ok) return;
      const done = await busy(b, () => api("POST", `/v1/admin/gift-sends/${encodeURIComponent(s.send_id)}/reverse`));
      if (!done) return;
      toast(t("Gift reversed: {coins} coins returned", { coins: fmt(done.coins_returned) }));
      await loadSends().catch(fail);
    }, { className: "small danger reverse" }));
  }
  return el(
    "tr",
    { dataset: { send: s.send_id, reversed: s.reversed ? "1" : "0" } },
    el("td", {}, dateOf(s.created_at_us), el("br"), el("small", { className: "muted", textContent: s.stream_id })),
    el("td", {}, el("bdi", { textContent: `@${s.sender_handle}` })),
    el("td", {}, el("bdi", { textContent: `@${s.creator_handle}` })),
    el("td", {}, el("bdi", { textContent: gift }), ` ×${fmt(s.count)}`),
    el("td", { className: "num", textContent: fmt(s.coins) }),
    el("td", {}, el("span", { className: `badge ${s.reversed ? "bad" : "good"}`, textContent: s.reversed ? t("Reversed") : t("Counted") })),
    actions,
  );
}

async function loadSends() {
  const data = new FormData(sendFilter);
  const params = new URLSearchParams({ limit: "30" });
  for (const key of ["stream_id", "user_id"]) {
    const v = String(data.get(key) || "").trim();
    if (v) params.set(key, v);
  }
  if (!Object.keys(giftNames).length) await loadGifts();
  const sends = await api("GET", `/v1/admin/gift-sends?${params}`);
  fillTable(document.getElementById("send-table"), sends.map(sendRow), t("No gifts match"));
}
sendFilter.addEventListener("submit", (e) => {
  e.preventDefault();
  if (sendFilter.reportValidity()) loadSends().catch(fail);
});

async function loadOrders() {
  const orders = await api("GET", "/v1/admin/topups?limit=50");
  const rows = orders.map((o) => el(
    "tr",
    { dataset: { order: o.id, status: o.status } },
    el("td", { textContent: dateOf(o.created_at_us) }),
    el("td", { textContent: `#${o.user_id}` }),
    el("td", { className: "num", textContent: fmt(o.coins) }),
    el("td", { className: "num", textContent: money(o.amount_minor, o.currency) }),
    el("td", { textContent: o.provider }),
    el("td", { textContent: ORDER_NAMES[o.status] ? t(ORDER_NAMES[o.status]) : o.status }),
  ));
  fillTable(document.getElementById("order-table"), rows, t("No orders yet"));
}

// --- ledger --------------------------------------------------------------------------------

const ledgerBox = document.getElementById("ledger-status");
const runButton = document.getElementById("ledger-run");

function showCheck(check) {
  const verdict = document.getElementById("ledger-verdict");
  const detail = document.getElementById("ledger-detail");
  const problems = document.getElementById("ledger-problems");
  problems.replaceChildren();
  if (!check) {
    ledgerBox.dataset.state = "unknown";
    verdict.textContent = t("Not checked yet since this server started");
    detail.textContent = "";
    return;
  }
  ledgerBox.dataset.state = check.ok ? "ok" : "problems";
  verdict.textContent = check.ok ? t("Clean: every invariant holds") : t("Problems found: {count}", { count: fmt(check.problems.length) });
  detail.textContent = `${t("{accounts} accounts, {transfers} transfers, {batches} batches", {
    accounts: fmt(check.accounts), transfers: fmt(check.transfers), batches: fmt(check.batches),
  })} · ${t("Last run {time} ({ms} ms)", { time: dateOf(check.started_at_us), ms: fmt(check.duration_ms) })}`;
  problems.replaceChildren(...check.problems.map((p) => el("li", { textContent: p })));
}

function showTotals(totals) {
  for (const dd of document.querySelectorAll("#totals [data-total]")) {
    dd.textContent = fmt(totals[dd.dataset.total]);
    dd.dataset.value = String(totals[dd.dataset.total]);
  }
}

const MISMATCH_NAMES = {
  missing_at_provider: "In the ledger, not at the provider",
  missing_in_ledger: "At the provider, not in the ledger",
  currency_differs: "Currency differs",
  amount_differs: "Amount differs",
  state_differs: "State differs",
};
const RECORD_NAMES = { topup: "Top-up", refund: "Refund", dispute: "Dispute", payout: "Payout", fee: "Fee" };
const named = (names, key) => (names[key] ? t(names[key]) : key);

/** One side of a mismatch: its amount and state, or "None" when that side has no record. */
function side(record) {
  if (!record) return el("td", { textContent: t("None") });
  return el("td", {},
    el("span", { className: "num", textContent: money(record.amount_minor, record.currency) }), " ",
    el("bdi", { lang: "en", textContent: record.state }));
}

function showReconciliation(run) {
  const box = document.getElementById("reconcile-status");
  const verdict = document.getElementById("reconcile-verdict");
  const detail = document.getElementById("reconcile-detail");
  const wrap = document.getElementById("reconcile-mismatches");
  wrap.hidden = !run || run.clean;
  if (!run) {
    box.dataset.state = "unknown";
    verdict.textContent = t("Not reconciled yet: run giftwave reconcile");
    detail.textContent = "";
    return;
  }
  box.dataset.state = run.clean ? "ok" : "problems";
  verdict.textContent = run.clean
    ? t("The books agree with {provider}", { provider: run.provider })
    : t("Mismatches with {provider}: {count}", { provider: run.provider, count: fmt(run.mismatch_count) });
  const parts = [
    t("{ledger} ledger records, {provider} provider records, from {since}", {
      ledger: fmt(run.records.ledger), provider: fmt(run.records.provider), since: dateOf(run.since_us),
    }),
    t("Run {time}", { time: dateOf(run.started_at_us) }),
  ];
  if (run.truncated) {
    parts.push(t("The first {shown} of {count} are shown; the command lists every one.", {
      shown: fmt(run.mismatches.length), count: fmt(run.mismatch_count),
    }));
  }
  detail.textContent = parts.join(" · ");
  const rows = run.mismatches.map((m) => el("tr", { dataset: { mismatch: m.mismatch } },
    el("td", { textContent: named(RECORD_NAMES, m.kind) }),
    el("td", {}, el("bdi", { lang: "en", dir: "ltr", textContent: m.reference })),
    el("td", { textContent: named(MISMATCH_NAMES, m.mismatch) }),
    side(m.ledger),
    side(m.provider),
  ));
  wrap.querySelector("tbody").replaceChildren(...rows);
}

async function loadLedger() {
  const [health, reconciliation] = await Promise.all([
    api("GET", "/v1/admin/ledger"),
    api("GET", "/v1/admin/reconciliation"),
  ]);
  showCheck(health.last_check);
  showTotals(health.totals);
  showReconciliation(reconciliation.last_run);
}

runButton.addEventListener("click", async () => {
  const label = runButton.textContent;
  runButton.textContent = t("Checking…");
  ledgerBox.setAttribute("aria-busy", "true");
  const check = await busy(runButton, () => api("POST", "/v1/admin/ledger/verify"));
  runButton.textContent = label;
  ledgerBox.removeAttribute("aria-busy");
  if (!check) return;
  showCheck(check);
  toast(check.ok ? t("Clean: every invariant holds") : t("Problems found: {count}", { count: fmt(check.problems.length) }),
    { kind: check.ok ? "info" : "error" });
  await loadLedger().catch(fail);
});

// --- sections ------------------------------------------------------------------------------

const LOADERS = {
  catalogue: () => Promise.all([loadGifts(), loadPackages()]),
  users: async () => document.querySelector("#user-search input").focus(),
  payouts: loadPayouts,
  gifts: () => Promise.all([loadSends(), loadOrders()]),
  ledger: loadLedger,
};
const sections = [...document.querySelectorAll(".admin-section")];
const tabs = [...document.querySelectorAll(".admin-tabs a")];
const loaded = new Set();

function showSection() {
  const wanted = location.hash.slice(1);
  const current = sections.find((s) => s.id === wanted) || sections[0];
  for (const s of sections) s.hidden = s !== current;
  for (const a of tabs) {
    if (a.hash === `#${current.id}`) a.setAttribute("aria-current", "true");
    else a.removeAttribute("aria-current");
  }
  if (!loaded.has(current.id)) {
    loaded.add(current.id);
    LOADERS[current.id]().catch((err) => { loaded.delete(current.id); fail(err); });
  }
}

window.addEventListener("hashchange", showSection);
showSection();
document.body.dataset.ready = "1";
