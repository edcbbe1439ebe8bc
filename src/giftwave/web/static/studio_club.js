// The creator's fan club (docs/community.md): its name and entry gift, and the members, each
// removable; who may chat in the creator's rooms, a setting of theirs with or without a club. Refusals are said by their code in the page's language (site.js).
import { api, problemMessage, t, toast } from "/static/site.js";

function refused(err) {
  toast(problemMessage(err) || t("Something went wrong"), { kind: "error" });
}

document.getElementById("club-name").addEventListener("submit", async (event) => {
  event.preventDefault();
  const entry = document.getElementById("club-entry").value;
  try {
    await api("PUT", "/v1/me/club", {
      name: document.getElementById("club-name-input").value,
      entry_gift_id: entry || null,
    });
    toast(t("Saved"));
    window.location.reload();
  } catch (err) { refused(err); }
});

document.getElementById("club-chat").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    await api("PUT", "/v1/me/chat-mode", {
      mode: document.getElementById("club-chat-mode").value,
      min_level: Number(document.getElementById("club-chat-level").value) || 1,
    });
    toast(t("Saved"));
  } catch (err) { refused(err); }
});

for (const button of document.querySelectorAll(".club-remove")) {
  button.addEventListener("click", async () => {
    const row = button.closest("tr");
    try {
      await api("DELETE", `/v1/me/club/members/${row.dataset.user}`);
      row.remove();
    } catch (err) { refused(err); }
  });
}
