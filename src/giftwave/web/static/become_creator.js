// The studio's page for a viewer: "Become a creator" (POST /v1/me/creator), then the studio.
import { api } from "/static/site.js";

const button = document.getElementById("become-creator");
const status = document.getElementById("become-status");
const messages = JSON.parse(document.getElementById("become-messages")?.textContent || "{}");

button?.addEventListener("click", async () => {
  button.disabled = true;
  status.textContent = "";
  try {
    await api("POST", "/v1/me/creator");
    location.assign("/studio"); // the same address, now the creator's studio
  } catch (err) {
    status.textContent = messages[err.code] || messages.failed;
    button.disabled = false;
  }
});
