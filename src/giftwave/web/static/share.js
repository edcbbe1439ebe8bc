// The viewer page's Share button: a popover of channels over the page (it moves nothing).
// A logged-in viewer's channel asks the server for their own link for it (POST /v1/shares: the
// same link again for the same channel), then copies it, opens the network's share page, shows
// its QR code, or the device's share sheet; the answer's figures replace the page's at once.
// An anonymous visitor copies the stream's plain address: no link is made, nobody is credited.
import { api, toast } from "/static/site.js";
import { countText } from "/static/count_text.js";

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

/** The stream's share figures as the server counted them after this share. */
function showCounts(shares, recent) {
  const count = document.getElementById("share-count");
  const last = document.getElementById("share-recent");
  if (count && Number.isInteger(shares)) {
    count.dataset.count = String(shares);
    count.textContent = countText(messages.shares, shares);
  }
  if (last && Number.isInteger(recent)) {
    last.dataset.count = String(recent);
    last.textContent = countText(messages.recent, recent);
    last.hidden = recent === 0;
    document.getElementById("share-recent-sep").hidden = recent === 0;
  }
}

async function makeLink(channel) {
  try {
    const link = await api("POST", "/v1/shares", {
      target_kind: "stream", target_id: panel.dataset.stream, channel,
    });
    showCounts(link.shares, link.sharers_last_hour);
    return link;
  } catch (err) {
    toast(err.status === 429 ? say("too_many") : say("failed"), { kind: "error" });
    return null;
  }
}

async function share(channel) {
  const field = document.getElementById("share-url");
  if (panel.dataset.plain === "1") { // anonymous: the plain address, already in the field
    toast((await copy(field.value, field)) ? say("copied") : say("copy_by_hand"));
    return;
  }
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

/** Open upwards when the screen has no room below the button but has above it: the whole
 *  panel on screen, without scrolling the page (a phone's sheet is fixed: nothing to do). */
function place() {
  panel.classList.remove("share-up");
  if (getComputedStyle(panel).position !== "absolute") return;
  const button = opener.getBoundingClientRect();
  const box = panel.getBoundingClientRect();
  if (box.bottom > window.innerHeight && button.top > box.height) panel.classList.add("share-up");
}

function toggle(open) {
  panel.hidden = !open;
  opener.setAttribute("aria-expanded", String(open));
  if (open) {
    place();
    panel.querySelector(".share-channels button")?.focus({ preventScroll: true });
  }
}

if (panel && opener) {
  opener.addEventListener("click", () => toggle(panel.hidden));
  document.getElementById("share-close")?.addEventListener("click", () => {
    toggle(false);
    opener.focus();
  });
  panel.addEventListener("keydown", (e) => {
    if (e.key === "Escape") { toggle(false); opener.focus(); }
  });
  // A popover closes when the visitor goes on with the page (a tap or click elsewhere).
  document.addEventListener("pointerdown", (e) => {
    if (!panel.hidden && !panel.contains(e.target) && !opener.contains(e.target)) toggle(false);
  });
  const device = panel.querySelector('[data-channel="device"]');
  if (device && typeof navigator.share === "function") device.hidden = false;
  for (const button of panel.querySelectorAll("[data-channel]")) {
    button.addEventListener("click", () => share(button.dataset.channel));
  }
}
