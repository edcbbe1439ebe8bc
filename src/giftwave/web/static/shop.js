// The coin shop: packages in the viewer's currency, checkout at the configured provider, and,
// back from it, the order followed until the provider's webhook has credited the coins.

import {
  api, boot, fmt, idempotencyKey, locale, money, problemMessage, refreshBalance, t, textRow, tn, toast,
} from "./site.js";
import { priceMinor } from "./spend.js";

const list = document.getElementById("packages");
const statusBox = document.getElementById("order-status");
const STATUS_NAMES = {
  open: "Waiting for the payment…",
  paid: "Paid",
  failed: "The payment was declined",
  refunded: "Refunded",
  partly_refunded: "Partly refunded",
  disputed: "Disputed",
  cancelled: "Cancelled",
};
const currency = boot.currency || "USD"; // chosen by the server: the one with packages
const prices = boot.coin_prices; // what a custom amount costs (web/pages/spend_boot.py)
const mayBuy = boot.user?.can_gift !== false;

async function checkout(body, button) {
  button.disabled = true;
  try {
    const order = await api("POST", "/v1/topups", { ...body, currency, idempotency_key: idempotencyKey() });
    if (order.checkout_url) location.href = order.checkout_url;
    else await follow(order.id);
  } catch (err) {
    toast(err.message, { kind: "error" });
  } finally {
    button.disabled = false;
  }
}

async function loadPackages() {
  const packages = await api("GET", `/v1/coin-packages?currency=${encodeURIComponent(currency)}`);
  list.replaceChildren();
  for (const p of packages) {
    const li = document.createElement("li");
    li.className = "package";
    li.dataset.coins = String(p.coins);
    const coins = document.createElement("span");
    coins.className = "package-coins";
    coins.innerHTML = '<span class="coin" aria-hidden="true"></span>';
    const n = document.createElement("bdi");
    n.textContent = fmt(p.coins);
    coins.append(n);
    const button = document.createElement("button");
    button.className = "primary";
    button.type = "button";
    button.textContent = money(p.price_minor, p.currency);
    button.disabled = !mayBuy;
    button.setAttribute("aria-label", `${tn("{n} coin", p.coins)}: ${button.textContent}`);
    button.addEventListener("click", () => checkout({ package_id: p.id }, button));
    li.append(coins, button);
    list.append(li);
  }
  list.removeAttribute("aria-busy");
}

async function loadOrders() {
  const body = document.getElementById("orders");
  const orders = await api("GET", "/v1/topups");
  body.replaceChildren();
  for (const o of orders.slice(0, 20)) {
    const tr = textRow([
      new Date(o.created_at_us / 1000).toLocaleString(locale),
      fmt(o.coins),
      money(o.amount_minor, o.currency),
      STATUS_NAMES[o.status] ? t(STATUS_NAMES[o.status]) : o.status,
    ]);
    tr.dataset.order = o.id;
    tr.dataset.status = o.status;
    tr.append(orderActions(o));
    body.append(tr);
  }
}

/** An unpaid order can be resumed at its checkout or cancelled (a payment that still arrives
 *  is credited all the same). */
function orderActions(order) {
  const td = document.createElement("td");
  if (order.status !== "open") return td;
  td.className = "order-actions";
  if (order.checkout_url) {
    const resume = document.createElement("a");
    resume.className = "button small primary resume";
    resume.href = order.checkout_url;
    resume.textContent = t("Continue payment");
    td.append(resume);
  }
  const cancel = document.createElement("button");
  cancel.type = "button";
  cancel.className = "small cancel";
  cancel.textContent = t("Cancel purchase");
  cancel.addEventListener("click", async () => {
    cancel.disabled = true;
    try {
      await api("POST", `/v1/topups/${encodeURIComponent(order.id)}/cancel`);
      toast(t("Purchase cancelled"));
    } catch (err) {
      toast(err.message, { kind: "error" });
    }
    await loadOrders();
  });
  td.append(cancel);
  return td;
}

/** Back from the checkout: wait for the provider's webhook to settle the order. */
async function follow(orderId) {
  statusBox.hidden = false;
  statusBox.textContent = t("Waiting for the payment…");
  for (let i = 0; i < 120; i++) {
    let order;
    try { order = await api("GET", `/v1/topups/${encodeURIComponent(orderId)}`); } catch (_) { break; }
    if (order.status === "paid") {
      statusBox.textContent = tn("{n} coin added", order.coins);
      statusBox.dataset.state = "paid";
      await refreshBalance();
      await loadOrders();
      return;
    }
    if (order.status === "failed") {
      statusBox.textContent = t("The payment was declined");
      statusBox.dataset.state = "failed";
      await loadOrders();
      return;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
  statusBox.hidden = true;
}

// The custom amount: its bounds said in the page's language (the browser's own message is in
// the browser's language), and its price shown as it is typed, by the server's formula.
const custom = document.getElementById("custom");
const coinsInput = custom.querySelector("input[name=coins]");
const priceLine = document.getElementById("custom-price");
const low = Number(coinsInput.min);
const high = Number(coinsInput.max);

function judgeAmount({ strict = false } = {}) {
  const raw = coinsInput.value.trim();
  const coins = Number(raw);
  const ok = raw !== "" && Number.isInteger(coins) && coins >= low && coins <= high;
  coinsInput.setCustomValidity(
    ok || (raw === "" && !strict) ? "" : problemMessage({ code: "invalid_coin_amount", min_coins: low, max_coins: high }),
  );
  priceLine.textContent = ok && prices
    ? t("Price: {price}", { price: money(priceMinor(coins, prices), prices.currency) })
    : "";
  priceLine.dataset.coins = ok ? String(coins) : "";
  return ok;
}

coinsInput.addEventListener("input", () => judgeAmount());
custom.querySelector("button[type=submit]").disabled = !mayBuy;
custom.addEventListener("submit", (e) => {
  e.preventDefault();
  judgeAmount({ strict: true });
  if (!custom.reportValidity()) return;
  checkout({ coins: Number(coinsInput.value) }, custom.querySelector("button"));
});

loadPackages().catch((err) => toast(err.message, { kind: "error" }));
loadOrders().catch(() => {});
if (boot.order) follow(boot.order);
