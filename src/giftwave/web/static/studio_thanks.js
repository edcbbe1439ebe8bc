// The studio between streams: thank the last stream's top supporters, once (docs/community.md,
// "Thanks"). Every supporter shown is ticked: leaving them all ticked sends to "all of them";
// unticking some sends to the chosen ones. A sent thank-you can be taken down.

import { api, problemText, submitting, t, toast } from "./site.js";

const panel = document.getElementById("thanks-panel");
const streamId = panel?.dataset.stream;
const path = `/v1/streams/${encodeURIComponent(streamId || "")}/thanks`;

// Refusals of these requests, in words (api/thanks.py); the shared ones come from the page.
const BY_CODE = {
  thanks_already_sent: "Your supporters were thanked for this stream already",
  not_a_supporter: "Only this stream's top supporters can be thanked",
  too_many_recipients: "Choose at most 10 supporters",
  no_supporters: "Nobody sent a gift in your last stream.",
  thanks_rate_limited: "Slow down a little",
};

const form = document.getElementById("thanks-form");
form?.addEventListener("submit", async (e) => {
  e.preventDefault();
  const boxes = [...form.querySelectorAll("input[name=recipient]")];
  const chosen = boxes.filter((b) => b.checked).map((b) => Number(b.value));
  const error = form.querySelector(".form-error");
  if (!chosen.length) {
    error.textContent = t("Choose at least one supporter");
    error.hidden = false;
    return;
  }
  if (!form.reportValidity()) return;
  const body = { message: new FormData(form).get("message") };
  if (chosen.length < boxes.length) body.recipient_ids = chosen;
  await submitting(form, async () => {
    await api("POST", path, body);
    toast(t("Thanks sent"));
    location.reload();
  }, { byCode: BY_CODE, navigates: true });
});

document.getElementById("thanks-remove")?.addEventListener("click", async () => {
  try {
    await api("DELETE", path);
    location.reload();
  } catch (err) {
    const box = document.getElementById("thanks-error");
    box.textContent = problemText(err, BY_CODE);
    box.hidden = false;
  }
});
