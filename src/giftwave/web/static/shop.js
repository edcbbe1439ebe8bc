// The coin shop: packages in the viewer's currency, checkout at the configured provider, and,
// back from it, the order followed until the provider's webhook has credited the coins.

import { api, boot, fmt, idempotencyKey, locale, money, refreshBalance, t, textRow, toast } from "./site.js";

const list = document.getElementById("packages");
const statusBox = document.getElementById("order-status");
const STATUS_NAMES = {
  open: "Waiting for the payment…",
  paid: "Paid",
  failed: "The payment was declined",
  refunded: "Refunded",
  partly_refunded: "Partly refunded",
  disputed: "Disputed",
};

async function checkout(body, button) {
  button.disabled = true;
  try {
    const order = await api("POST", "/v1/topups", { ...body, idempotency_key: idempotencyKey() });
    if (order.checkout_url) location.href = order.checkout_url;
    else await follow(order.id);
  } catch (err) {
    toast(err.message, { kind: "error" });
  } finally {
    button.disabled = false;
  }
}

async function loadPackages() {
  const currency = boot.currency || "USD";
  let packages = await api("GET", `/v1/coin-packages?currency=${currency}`);
  if (!packages.length && currency !== "USD") packages = await api("GET", "/v1/coin-packages?currency=USD");
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
    body.append(tr);
  }
}

/** Back from the checkout: wait for the provider's webhook to settle the order. */
async function follow(orderId) {
  statusBox.hidden = false;
  statusBox.textContent = t("Waiting for the payment…");
  for (let i = 0; i < 120; i++) {
    let order;
    try { order = await api("GET", `/v1/topups/${encodeURIComponent(orderId)}`); } catch (_) { break; }
    if (order.status === "paid") {
      statusBox.textContent = t("Coins added: {coins}", { coins: fmt(order.coins) });
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

document.getElementById("custom").addEventListener("submit", (e) => {
  e.preventDefault();
  const form = e.currentTarget;
  if (!form.reportValidity()) return;
  checkout({ coins: Number(new FormData(form).get("coins")) }, form.querySelector("button"));
});

loadPackages().catch((err) => toast(err.message, { kind: "error" }));
loadOrders().catch(() => {});
if (boot.order) follow(boot.order);
