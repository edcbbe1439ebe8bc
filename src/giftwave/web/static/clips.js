// The clip page: reactions, repost, a share link, and a watermarked download followed until
// its file is ready.
import { ApiError, api, boot, fmt, loginUrl, toast } from "/static/site.js";

const clip = boot.clip;
const say = JSON.parse(document.getElementById("clip-messages").textContent);
const POLL_MS = 700;
const POLL_MAX = 600; // about 7 minutes: a render outlasting that is reported as failed

function needLogin() {
  if (boot.user) return false;
  toast(say.login, { link: loginUrl(), linkText: "→" });
  return true;
}

function failed(err) {
  toast(err instanceof ApiError && err.code === "downloads_disabled" ? say.disabled : say.failed,
    { kind: "error" });
}

for (const button of document.querySelectorAll(".reaction")) {
  button.addEventListener("click", async () => {
    if (needLogin()) return;
    const on = button.getAttribute("aria-pressed") !== "true";
    try {
      const r = await api(on ? "PUT" : "DELETE", `/v1/clips/${clip.id}/reactions/${button.dataset.emoji}`);
      for (const [name, n] of Object.entries(r.reactions)) {
        document.getElementById(`count-${name}`).textContent = fmt(n);
        document.querySelector(`.reaction[data-emoji="${name}"]`)
          .setAttribute("aria-pressed", String(r.my_reactions.includes(name)));
      }
    } catch (err) { failed(err); }
  });
}

const repost = document.getElementById("repost");
repost.addEventListener("click", async () => {
  if (needLogin()) return;
  const on = repost.getAttribute("aria-pressed") !== "true";
  try {
    const r = await api(on ? "POST" : "DELETE", `/v1/clips/${clip.id}/repost`);
    repost.setAttribute("aria-pressed", String(r.reposted));
    document.getElementById("repost-count").textContent = fmt(r.reposts);
  } catch (err) { failed(err); }
});

document.getElementById("share-clip").addEventListener("click", async () => {
  if (needLogin()) return;
  try {
    const link = await api("POST", "/v1/shares", { target_kind: "clip", target_id: clip.id, channel: "copy" });
    try {
      await navigator.clipboard.writeText(link.url);
      toast(say.copied);
    } catch (_) {
      toast(`${say.copy_by_hand}: ${link.url}`, { ms: 10000 });
    }
  } catch (err) { failed(err); }
});

const download = document.getElementById("download");
const status = document.getElementById("download-status");
const progress = document.getElementById("download-progress");
const sleep = (ms) => new Promise((done) => setTimeout(done, ms));

download?.addEventListener("click", async () => {
  if (needLogin()) return;
  download.disabled = true;
  try {
    let job = await api("POST", `/v1/clips/${clip.id}/downloads`);
    for (let i = 0; job.status !== "done" && job.status !== "failed" && i < POLL_MAX; i++) {
      status.textContent = job.status === "queued" ? say.queued : say.rendering;
      progress.hidden = false;
      progress.value = job.progress_pct;
      await sleep(POLL_MS);
      job = await api("GET", `/v1/clips/${clip.id}/downloads/${job.id}`);
    }
    if (job.status !== "done") throw new Error(job.error || "render failed");
    status.textContent = say.ready;
    progress.value = 100;
    const link = document.getElementById("download-file");
    link.href = job.url;
    document.getElementById("download-link").hidden = false;
    link.focus();
  } catch (err) {
    status.textContent = err instanceof ApiError ? "" : say.render_failed;
    failed(err);
  } finally {
    download.disabled = false;
  }
});
