// Spending safely in a room: an expensive gift asks before it goes (once per combo for a combo
// gift), a viewer too young to gift sees why the tray is off, and coins are bought in a sheet
// over the stream whose checkout comes back to this room, where the order is followed until the
// coins land (or resumed, or cancelled).

import {
  api, boot, fmt, idempotencyKey, money, problemMessage, refreshBalance, t, tn, toast,
} from "./site.js";

const $ = (id) => document.getElementById(id);
const FOLLOW_POLLS = 90; // one a second: a sandbox payment lands in well under that
const confirmMin = Number(boot.gift_confirm_min_coins ?? 0);
const comboQuietMs = Number(boot.combo_quiet_ms ?? 3000);
const prices = boot.coin_prices; // {currency, rate_coins, rate_minor, step_minor, …} or null
let confirmedCombo = null; // {gift, until}: a confirmed combo gift repeats without asking

/** The price of `coins` as the server charges a custom amount (web/pages/spend_boot.py): exact in
 *  integers, rounded up to a chargeable step. */
export function priceMinor(coins, p = prices) {
  const raw = (BigInt(coins) * BigInt(p.rate_minor) + BigInt(p.rate_coins) - 1n) / BigInt(p.rate_coins);
  const step = BigInt(p.step_minor);
  return Number(((raw + step - 1n) / step) * step);
}

/** Must this gift be confirmed before it is sent? */
export function asksFirst(button) {
  const price = Number(button.dataset.price);
  if (!confirmMin || price < confirmMin) return false;
  const combo = confirmedCombo;
  return !(combo && combo.gift === button.dataset.gift && performance.now() < combo.until);
}

/** A gift went out: a confirmed combo gift stays confirmed while its combo lasts. */
export function noteSent(button) {
  if (confirmedCombo?.gift === button.dataset.gift) {
    confirmedCombo.until = performance.now() + comboQuietMs;
  }
}

const dialog = $("gift-confirm");

/** Ask (a modal dialog: Escape or Cancel says no), then `send(button)` once if confirmed. */
export function confirmThenSend(button, send) {
  if (!dialog || dialog.open) return;
  const price = Number(button.dataset.price);
  const name = button.querySelector(".gift-name")?.textContent || button.dataset.gift;
  const image = dialog.querySelector(".gift-confirm-image");
  image.src = button.querySelector("img")?.src || "";
  image.hidden = !image.src;
  $("gift-confirm-title").textContent = t("Send {gift}?", { gift: name });
  $("gift-confirm-what").textContent = t("{gift} x{count}", { count: fmt(1), gift: name });
  const coins = tn("{n} coin", price);
  $("gift-confirm-price").textContent = prices
    ? `${coins} (${t("about {money}", { money: money(priceMinor(price), prices.currency) })})`
    : coins;
  dialog.dataset.gift = button.dataset.gift;
  dialog.returnValue = "";
  dialog.addEventListener("close", () => {
    delete dialog.dataset.gift;
    button.focus();
    if (dialog.returnValue !== "send") return;
    if (button.dataset.combo === "yes") {
      confirmedCombo = { gift: button.dataset.gift, until: performance.now() + comboQuietMs };
    }
    send(button);
  }, { once: true });
  dialog.showModal();
  dialog.querySelector("button.cancel")?.focus(); // the safe choice has the focus
}

// ---- too young to gift: the tray is off, and says why -------------------------------------
const spender = boot.user;
if (spender && spender.can_gift === false) {
  const tray = document.querySelector(".tray");
  if (tray) {
    const why = document.createElement("p");
    why.id = "tray-unavailable";
    why.className = "notice tray-unavailable";
    why.textContent = problemMessage({ code: "under_age" });
    tray.before(why);
    tray.setAttribute("aria-disabled", "true");
    for (const b of tray.querySelectorAll(".gift-button")) {
      b.disabled = true;
      b.setAttribute("aria-describedby", why.id);
    }
  }
  $("recharge-open")?.setAttribute("hidden", "");
}

// ---- the recharge sheet -------------------------------------------------------------------
const sheet = $("recharge");

async function buy(packageId, button) {
  button.disabled = true;
  try {
    const order = await api("POST", "/v1/topups", {
      package_id: packageId,
      currency: prices.currency,
      stream_id: boot.stream_id,
      idempotency_key: idempotencyKey(),
    });
    location.href = order.checkout_url; // the provider sends the buyer back to this room
  } catch (err) {
    toast(err.message, { kind: "error" });
    button.disabled = false;
  }
}

async function fillSheet() {
  const list = $("recharge-packages");
  if (list.childElementCount || !prices) return;
  list.setAttribute("aria-busy", "true");
  const packages = await api("GET", `/v1/coin-packages?currency=${encodeURIComponent(prices.currency)}`);
  for (const p of packages) {
    const li = document.createElement("li");
    li.dataset.coins = String(p.coins);
    const button = document.createElement("button");
    button.type = "button";
    button.className = "package-buy";
    const coins = document.createElement("bdi");
    coins.className = "package-coins";
    coins.textContent = tn("{n} coin", p.coins);
    const price = document.createElement("span");
    price.className = "package-price";
    price.textContent = money(p.price_minor, p.currency);
    button.append(coins, price);
    button.addEventListener("click", () => buy(p.id, button));
    li.append(button);
    list.append(li);
  }
  list.removeAttribute("aria-busy");
}

export function openRecharge() {
  if (!sheet) return false;
  if (!sheet.open) sheet.showModal();
  fillSheet().catch((err) => toast(err.message, { kind: "error" }));
  return true;
}

if (sheet) {
  $("recharge-open")?.addEventListener("click", openRecharge);
  $("recharge-close")?.addEventListener("click", () => sheet.close());
  sheet.addEventListener("click", (e) => { if (e.target === sheet) sheet.close(); }); // the backdrop
  // "Buy coins" anywhere in the room (the balance, a "Not enough coins" toast) opens the sheet
  // here instead of leaving the stream for the shop.
  document.addEventListener("click", (e) => {
    const link = e.target.closest?.("a[href='/shop']");
    if (link && openRecharge()) e.preventDefault();
  });
}

// ---- back from the checkout: follow the order ----------------------------------------------
function showPending(order) {
  const box = $("recharge-pending");
  if (!box) return;
  box.hidden = false;
  $("recharge-resume").href = order.checkout_url;
  const cancel = $("recharge-cancel");
  cancel.onclick = async () => {
    cancel.disabled = true;
    try {
      await api("POST", `/v1/topups/${encodeURIComponent(order.id)}/cancel`);
      box.hidden = true;
      document.body.dataset.topup = "cancelled";
      toast(t("Purchase cancelled"));
    } catch (err) {
      toast(err.message, { kind: "error" });
    } finally {
      cancel.disabled = false;
    }
  };
  openRecharge();
}

async function follow(orderId, result) {
  for (let i = 0; i < FOLLOW_POLLS; i++) {
    let order;
    try { order = await api("GET", `/v1/topups/${encodeURIComponent(orderId)}`); } catch (_) { return; }
    document.body.dataset.topup = order.status;
    if (order.status === "paid") {
      await refreshBalance();
      toast(tn("{n} coin added", order.coins));
      return;
    }
    if (order.status === "failed") { toast(t("The payment was declined"), { kind: "error" }); return; }
    if (order.status === "open" && result === "cancel") {
      toast(t("The payment was not completed"));
      showPending(order);
      return;
    }
    if (order.status !== "open") return;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

const back = new URLSearchParams(location.search);
if (back.get("order") && boot.user) {
  // Said once: a reload or a shared link must not follow the order again.
  const clean = new URL(location.href);
  clean.searchParams.delete("order");
  clean.searchParams.delete("result");
  history.replaceState(null, "", clean.pathname + clean.search + clean.hash);
  follow(back.get("order"), back.get("result"));
}
