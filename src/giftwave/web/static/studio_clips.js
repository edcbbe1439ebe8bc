// The creator's clips: upload (multipart, with the session's CSRF header), and downloads
// switched on or off per clip.
import { ApiError, api, toast } from "/static/site.js";

const say = JSON.parse(document.getElementById("studio-clip-messages").textContent);
const CODES = { clip_too_large: "too_large", clip_too_long: "too_long", not_a_video: "not_a_video" };
// A video past one of the limits FFmpeg is held to (docs/clips.md), whichever it is.
for (const code of [
  "clip_too_large_dimensions",
  "clip_frame_rate_too_high",
  "clip_codec_not_allowed",
  "clip_pixel_format_not_allowed",
  "clip_bit_depth_too_high",
  "clip_too_many_streams",
]) {
  CODES[code] = "over_limits";
}

function csrf() {
  const m = document.cookie.match(/(?:^|;\s*)gw_csrf=([^;]+)/);
  return m ? decodeURIComponent(m[1]) : "";
}

const form = document.getElementById("clip-upload");
const status = document.getElementById("upload-status");
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const submit = document.getElementById("clip-submit");
  submit.disabled = true;
  status.textContent = say.uploading;
  try {
    const r = await fetch("/v1/clips", {
      method: "POST",
      body: new FormData(form),
      headers: { Accept: "application/json", "X-CSRF-Token": csrf() },
      credentials: "same-origin",
    });
    const body = await r.json();
    if (!r.ok) throw new ApiError(r.status, body);
    status.textContent = say.uploaded;
    window.location.reload();
  } catch (err) {
    status.textContent = say[CODES[err.code]] || say.failed;
  } finally {
    submit.disabled = false;
  }
});

for (const box of document.querySelectorAll(".downloads-toggle")) {
  box.addEventListener("change", async () => {
    const id = box.closest("tr").dataset.clip;
    try {
      const r = await api("PATCH", `/v1/clips/${id}`, { downloads_enabled: box.checked });
      box.checked = r.downloads_enabled;
      toast(say.saved);
    } catch (_) {
      box.checked = !box.checked;
      toast(say.failed, { kind: "error" });
    }
  });
}
