// The spending page: save one's own limits (a raise waits its cooling-off: the page shows it
// after a reload), and start a break from spending after a confirmation.
import { api, submitting } from "/static/site.js";

const messages = JSON.parse(document.getElementById("spending-messages")?.textContent || "{}");
const limits = document.getElementById("limits-form");
const pause = document.getElementById("break-form");

limits?.addEventListener("submit", (event) => {
  event.preventDefault();
  const body = {};
  for (const input of limits.querySelectorAll("input[type=number]")) {
    const text = input.value.trim();
    if (text === "" && input.defaultValue === "") continue; // no limit, and none asked
    body[input.name] = text === "" ? null : Number(text);
  }
  submitting(limits, async () => {
    await api("PUT", "/v1/me/spending/limits", body);
    document.getElementById("limits-state").textContent = messages.saved || "";
    window.location.reload();
  }, { navigates: true });
});

pause?.addEventListener("submit", (event) => {
  event.preventDefault();
  if (!window.confirm(messages.confirm || "")) return;
  const days = Number(pause.querySelector("#break-days").value);
  submitting(pause, async () => {
    await api("POST", "/v1/me/spending/exclusion", { days });
    window.location.reload();
  }, { navigates: true });
});
