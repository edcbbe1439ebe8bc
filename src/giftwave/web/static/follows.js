// The Follow/Following toggle of the viewer page and of a profile (PUT or DELETE
// /v1/me/following/{id}); on a profile, its follower count follows. An anonymous visitor is
// asked to log in first.
import { api, boot, loginUrl, toast } from "/static/site.js";
import { countText } from "/static/count_text.js";

const button = document.getElementById("follow");
const messages = JSON.parse(document.getElementById("follow-messages")?.textContent || "{}");
const say = (key) => messages[key] || key;

const followers = document.getElementById("followers");
const followerForms = JSON.parse(document.getElementById("follower-forms")?.textContent || "null");

function showFollowers(count) {
  if (!followers || !followerForms) return;
  followers.dataset.followers = String(count);
  followers.textContent = countText(followerForms, count);
}

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
    const answer = await api(following ? "DELETE" : "PUT", `/v1/me/following/${button.dataset.user}`);
    show(!following);
    // PUT answers the new count; DELETE answers nothing: one fewer.
    showFollowers(answer?.followers ?? Math.max(0, Number(followers?.dataset.followers || 1) - 1));
  } catch (err) {
    toast(err.status === 429 ? say("too_many") : say("failed"), { kind: "error" });
  } finally {
    button.disabled = false;
  }
});
