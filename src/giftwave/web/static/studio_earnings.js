// The studio's earnings page: the statement and its chart are drawn by the server; here, the
// creator's payouts (listed, and requested with an idempotency key).

import { ApiError, api, boot, fmt, idempotencyKey, locale, money, submitting, t, textRow, toast } from "./site.js";

const $ = (id) => document.getElementById(id);
const STATUS_NAMES = {
  requested: "Requested",
  pending: "Waiting for review",
  approved: "Paid out",
  rejected: "Rejected",
  expired: "Expired",
  failed: "Failed",
  processing: "Being paid",
  paid: "Paid",
  returned: "Returned",
};
const RESERVED = new Set(["requested", "pending"]); // their diamonds are set aside
const BY_CODE = {
  payout_below_minimum: () =>
    t("The minimum payout is {diamonds} diamonds", { diamonds: fmt(boot.min_payout_diamonds) }),
  payout_daily_cap: "Today's payout limit is reached",
  insufficient_diamonds: "Not enough diamonds",
  under_age: "Payouts need you to be of age",
  diamond_debt: "A reversed gift left a diamond debt: new earnings settle it first",
  payee_not_ready: "Set up your payout account first",
};

// What the payee is sent, in their currency, once the payout provider's transfer is made;
// the rate recorded with it (US dollar → that currency) in the cell's title.
function sentCell(p) {
  if (p.payout_amount_minor == null) return "—";
  return money(p.payout_amount_minor, p.payout_currency);
}

function payoutRow(p) {
  const tr = textRow([
    new Date(p.requested_at_us / 1000).toLocaleDateString(locale),
    fmt(p.diamonds),
    money(p.amount_minor, p.currency),
    t(STATUS_NAMES[p.status] || p.status),
    sentCell(p),
    p.provider_transfer_id || "—",
  ]);
  tr.dataset.id = p.id;
  tr.dataset.status = p.status;
  tr.children[3].className = `payout-status ${p.status}`;
  if (p.fx_rate_micros != null && p.payout_currency !== p.currency) {
    tr.children[4].title = t("1 {base} = {rate} {currency}", {
      base: p.currency, rate: fmt(p.fx_rate_micros / 1e6), currency: p.payout_currency,
    });
  }
  tr.children[5].className = "reference";
  return tr;
}

async function loadPayouts() {
  const payouts = (await api("GET", "/v1/payouts")).sort((a, b) => b.requested_at_us - a.requested_at_us);
  $("payouts").replaceChildren(...payouts.map(payoutRow));
  $("payouts-empty").hidden = payouts.length > 0;
  return payouts;
}

async function showBalances(payouts) {
  const wallet = await api("GET", "/v1/me/wallet");
  $("available-diamonds").textContent = fmt(wallet.diamonds);
  $("pending-diamonds").textContent = fmt(wallet.diamonds_reserved);
  const reserved = payouts.filter((p) => RESERVED.has(p.status));
  if (reserved.length) {
    const cents = reserved.reduce((sum, p) => sum + p.amount_minor, 0);
    $("pending-cash").textContent = money(cents, reserved[0].currency);
  }
  form.elements.diamonds.max = String(Math.max(wallet.diamonds, boot.min_payout_diamonds));
}

// One key per request, kept until the server answers it: a retry after a lost answer never
// asks twice. Another amount is another request.
const form = $("payout-form");
let key = idempotencyKey();
form.elements.diamonds.addEventListener("input", () => { key = idempotencyKey(); });
form.addEventListener("submit", async (e) => {
  e.preventDefault();
  if (!form.reportValidity()) return;
  await submitting(form, async () => {
    try {
      await api("POST", "/v1/payouts", { diamonds: Number(form.elements.diamonds.value), idempotency_key: key });
    } catch (err) {
      if (err instanceof ApiError && err.status < 500) key = idempotencyKey(); // refused, not lost
      throw err;
    }
    key = idempotencyKey();
    toast(t("Payout requested"));
    await showBalances(await loadPayouts());
  }, { byCode: BY_CODE });
});

// Onboarding happens at the payout provider: a fresh, short-lived link each time.
const onboard = $("payee-onboard");
onboard?.addEventListener("click", async () => {
  onboard.disabled = true;
  try {
    const { url } = await api("POST", "/v1/creators/me/payee/onboarding");
    window.location.assign(url);
  } catch (err) {
    onboard.disabled = false;
    toast(err.message, { kind: "error" });
  }
});

loadPayouts().catch((err) => toast(err.message, { kind: "error" }));
