// One's own profile: whether one may be drawn to receive gifted subscriptions
// (PUT /v1/me/gifted-subscriptions). The box shows what the server answered; a refusal puts it back.
import { api, toast, t } from "/static/site.js";

const box = document.getElementById("gifted-accept");

box?.addEventListener("change", async () => {
  const wanted = box.checked;
  box.disabled = true;
  try {
    const answer = await api("PUT", "/v1/me/gifted-subscriptions", { accept: wanted });
    box.checked = answer.accept;
    toast(t("Saved"));
  } catch {
    box.checked = !wanted;
    toast(t("Something went wrong"), { kind: "error" });
  } finally {
    box.disabled = false;
  }
});
