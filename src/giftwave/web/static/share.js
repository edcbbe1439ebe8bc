// The viewer page's Share button: a panel of channels. Each channel asks the server for the
// viewer's own link for it (POST /v1/shares: the same link again for the same channel), then
// copies it, opens the network's share page, shows its QR code, or the device's share sheet.
import { api, toast } from "/static/site.js";

const panel = document.getElementById("share-panel");
const opener = document.getElementById("share-open");
const messages = JSON.parse(document.getElementById("share-messages")?.textContent || "{}");
const say = (key) => messages[key] || key;

function intentUrl(channel, url, title) {
  const u = encodeURIComponent(url);
  const text = encodeURIComponent(title);
  switch (channel) {
    case "whatsapp": return `https://wa.me/?text=${encodeURIComponent(`${title} ${url}`)}`;
    case "telegram": return `https://t.me/share/url?url=${u}&text=${text}`;
    case "x": return `https://x.com/intent/post?url=${u}&text=${text}`;
    case "facebook": return `https://www.facebook.com/sharer/sharer.php?u=${u}`;
    case "email": return `mailto:?subject=${text}&body=${encodeURIComponent(`${title}\n\n${url}`)}`;
    default: return null;
  }
}

async function copy(url, field) {
  try {
    await navigator.clipboard.writeText(url);
    return true;
  } catch (_) {
    // No clipboard permission (an older browser, an insecure origin): select the field.
    field.focus();
    field.select();
    try { return document.execCommand("copy"); } catch (__) { return false; }
  }
}

async function makeLink(channel) {
  try {
    return await api("POST", "/v1/shares", {
      target_kind: "stream", target_id: panel.dataset.stream, channel,
    });
  } catch (err) {
    toast(err.status === 429 ? say("too_many") : say("failed"), { kind: "error" });
    return null;
  }
}

async function share(channel) {
  const field = document.getElementById("share-url");
  const qr = document.getElementById("share-qr");
  const title = panel.dataset.title || document.title;
  // A window opened now, while the click still counts, is not blocked as a pop-up later.
  const intent = intentUrl(channel, "", "") && channel !== "email" ? window.open("", "_blank") : null;
  const link = await makeLink(channel);
  if (!link) { intent?.close(); return; }
  field.value = link.url;
  qr.hidden = channel !== "qr";
  if (channel === "qr") qr.src = link.qr_svg_url;
  if (channel === "copy") {
    toast((await copy(link.url, field)) ? say("copied") : say("copy_by_hand"));
  } else if (channel === "device") {
    try { await navigator.share({ title, url: link.url }); } catch (_) { /* dismissed */ }
  } else if (channel === "email") {
    location.href = intentUrl(channel, link.url, title);
  } else if (intent) {
    intent.opener = null;
    intent.location.href = intentUrl(channel, link.url, title);
  } else if (channel !== "qr") {
    toast(say("ready"));
  }
}

function toggle(open) {
  panel.hidden = !open;
  opener.setAttribute("aria-expanded", String(open));
  if (open) panel.querySelector("button, a")?.focus();
}

if (panel && opener) {
  opener.addEventListener("click", () => toggle(panel.hidden));
  panel.addEventListener("keydown", (e) => {
    if (e.key === "Escape") { toggle(false); opener.focus(); }
  });
  const device = panel.querySelector('[data-channel="device"]');
  if (device && typeof navigator.share === "function") device.hidden = false;
  for (const button of panel.querySelectorAll("[data-channel]")) {
    button.addEventListener("click", () => share(button.dataset.channel));
  }
}
