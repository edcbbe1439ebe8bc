// A creator's Subscribe / Cancel subscription button on their profile (POST or DELETE
// /v1/creators/{id}/subscription); the page is drawn again after a change, so what it says
// comes from the server. An anonymous visitor is asked to log in first.
import { ApiError, api, boot, loginUrl, problemText, refreshBalance, toast } from "/static/site.js";

const box = document.getElementById("subscribe-box");
const messages = JSON.parse(document.getElementById("subscribe-messages")?.textContent || "{}");
const say = (key) => messages[key] || key;

async function change(button, method, done) {
  if (!boot.user) {
    toast(say("login"), { link: loginUrl(), linkText: say("log_in") });
    return;
  }
  button.disabled = true;
  try {
    await api(method, `/v1/creators/${box.dataset.creator}/subscription`);
    await refreshBalance();
    toast(say(done));
    setTimeout(() => window.location.reload(), 1200);
  } catch (err) {
    toast(err instanceof ApiError ? problemText(err) : say("failed"), { kind: "error" });
    button.disabled = false;
  }
}

const subscribe = document.getElementById("subscribe");
subscribe?.addEventListener("click", () => change(subscribe, "POST", "subscribed"));
const unsubscribe = document.getElementById("unsubscribe");
unsubscribe?.addEventListener("click", () => change(unsubscribe, "DELETE", "cancelled"));
