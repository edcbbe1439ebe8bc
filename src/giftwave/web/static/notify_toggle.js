// "Notify me" on a profile: opt in to or out of the creator's notices
// (PUT or DELETE /v1/creators/{id}/notify). Notices land in /me/inbox; push is turned on there.
import { api, toast } from "/static/site.js";

const button = document.getElementById("notify");
const messages = JSON.parse(document.getElementById("notify-messages")?.textContent || "{}");
const say = (key) => messages[key] || key;

button?.addEventListener("click", async () => {
  const on = button.getAttribute("aria-pressed") === "true";
  button.disabled = true;
  try {
    await api(on ? "DELETE" : "PUT", `/v1/creators/${button.dataset.user}/notify`);
    button.setAttribute("aria-pressed", on ? "false" : "true");
    button.textContent = on ? say("off") : say("on");
  } catch (err) {
    toast(err.status === 429 ? say("too_many") : say("failed"), { kind: "error" });
  } finally {
    button.disabled = false;
  }
});
