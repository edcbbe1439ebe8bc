// Gifting subscriptions in the room (POST /v1/streams/{id}/gifted-subscriptions): K viewers
// here who may receive one are drawn by the server; the room then says who gifted and who
// received (live.js, `subs_gifted`). One key per click: a retried request buys nothing twice.
import { ApiError, api, boot, idempotencyKey, problemText, refreshBalance, t, tn, toast } from "./site.js";

const form = document.getElementById("gift-subs");
const count = document.getElementById("gift-subs-count");
const send = document.getElementById("gift-subs-send");

form?.addEventListener("submit", async (event) => {
  event.preventDefault();
  const n = Number(count.value);
  send.disabled = true;
  try {
    const done = await api("POST", `/v1/streams/${encodeURIComponent(boot.stream_id)}/gifted-subscriptions`, {
      count: n,
      idempotency_key: idempotencyKey(),
    });
    await refreshBalance();
    toast(tn("You gifted {n} subscription", done.count));
  } catch (err) {
    toast(err instanceof ApiError ? problemText(err) : t("Something went wrong"), { kind: "error" });
  } finally {
    send.disabled = false;
  }
});
