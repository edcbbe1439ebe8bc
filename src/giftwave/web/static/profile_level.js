// One's own profile: hide one's gifter level from everybody else, or show it again
// (PATCH /v1/me/level); the page is read again so every part of it says the same.
import { api, toast, t } from "/static/site.js";

const button = document.getElementById("level-hide");

button?.addEventListener("click", async () => {
  button.disabled = true;
  try {
    await api("PATCH", "/v1/me/level", { hidden: button.dataset.hidden !== "true" });
    location.reload();
  } catch {
    toast(t("Something went wrong"), { kind: "error" });
    button.disabled = false;
  }
});
