// The studio's subscriptions page: the figures and subscribers are drawn by the server; here,
// the creator's price is set through the API (PUT /v1/me/subscription-price).

import { api, fmt, submitting, t, toast } from "./site.js";

const form = document.getElementById("sub-price-form");
form.addEventListener("submit", async (e) => {
  e.preventDefault();
  if (!form.reportValidity()) return;
  await submitting(form, async () => {
    const saved = await api("PUT", "/v1/me/subscription-price", {
      price_coins: Number(form.elements.price_coins.value),
    });
    form.elements.price_coins.value = String(saved.price_coins);
    toast(`${t("Price saved")}: ${fmt(saved.price_coins)}`);
  });
});
