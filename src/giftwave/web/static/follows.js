// The viewer page's Follow/Following toggle (PUT or DELETE /v1/me/following/{id}).
// An anonymous visitor is asked to log in first.
import { api, boot, loginUrl, toast } from "/static/site.js";

const button = document.getElementById("follow");
const messages = JSON.parse(document.getElementById("follow-messages")?.textContent || "{}");
const say = (key) => messages[key] || key;

function show(following) {
  button.setAttribute("aria-pressed", following ? "true" : "false");
  button.textContent = following ? say("following") : say("follow");
}

button?.addEventListener("click", async () => {
  if (!boot.user) {
    toast(say("login"), { link: loginUrl(), linkText: say("log_in") });
    return;
  }
  const following = button.getAttribute("aria-pressed") === "true";
  button.disabled = true;
  try {
    await api(following ? "DELETE" : "PUT", `/v1/me/following/${button.dataset.user}`);
    show(!following);
  } catch (err) {
    toast(err.status === 429 ? say("too_many") : say("failed"), { kind: "error" });
  } finally {
    button.disabled = false;
  }
});
