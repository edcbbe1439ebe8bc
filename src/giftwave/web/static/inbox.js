// The inbox page: turn on push for this browser, stop one creator's notices, mark all read.
// The browser's permission prompt is asked for only from the button's click: never on load.
import { api, toast } from "/static/site.js";

const messages = JSON.parse(document.getElementById("inbox-messages")?.textContent || "{}");
const say = (key) => messages[key] || key;
const state = document.getElementById("push-state");
const button = document.getElementById("push-on");

function keyBytes(base64url) {
  const text = atob(base64url.replace(/-/g, "+").replace(/_/g, "/"));
  return Uint8Array.from(text, (c) => c.charCodeAt(0));
}

// The worker's scope is /static/, not this page's path: serviceWorker.ready (which waits for a
// worker controlling this page) would never resolve; subscribe needs an active one.
function activated(registration) {
  if (registration.active) return Promise.resolve();
  const worker = registration.installing || registration.waiting;
  return new Promise((resolve, reject) => {
    worker.addEventListener("statechange", () => {
      if (worker.state === "activated") resolve();
      if (worker.state === "redundant") reject(new Error("the service worker failed"));
    });
  });
}

async function turnOn() {
  if (!("serviceWorker" in navigator) || !("PushManager" in window) || !("Notification" in window)) {
    state.textContent = say("unsupported");
    return;
  }
  state.textContent = say("asking");
  const permission = await Notification.requestPermission();
  if (permission !== "granted") {
    state.textContent = say("denied");
    return;
  }
  const registration = await navigator.serviceWorker.register("/static/push_sw.js", { scope: "/static/" });
  await activated(registration);
  const subscription = await registration.pushManager.subscribe({
    userVisibleOnly: true,
    applicationServerKey: keyBytes(button.dataset.key),
  });
  const body = subscription.toJSON();
  // The page's language: the notices this browser gets are written in it (docs/notifications.md).
  await api("POST", "/v1/me/push-subscriptions", {
    endpoint: body.endpoint,
    keys: body.keys,
    locale: document.documentElement.lang,
  });
  state.textContent = say("on");
  button.disabled = true;
}

button?.addEventListener("click", async () => {
  button.disabled = true;
  try {
    await turnOn();
  } catch (err) {
    state.textContent = say("failed");
  } finally {
    if (state.textContent !== say("on")) button.disabled = false;
  }
});

for (const stop of document.querySelectorAll(".notice-stop")) {
  stop.addEventListener("click", async () => {
    stop.disabled = true;
    try {
      // The token is in the body: a link's query would put it in logs.
      await api("POST", "/v1/notify/unsubscribe", { token: stop.dataset.token });
      toast(say("stopped"));
    } catch (err) {
      stop.disabled = false;
      toast(say("failed"), { kind: "error" });
    }
  });
}

document.getElementById("read-all")?.addEventListener("click", async () => {
  try {
    await api("POST", "/v1/me/inbox/read");
    for (const item of document.querySelectorAll(".notice.unread")) item.classList.replace("unread", "read");
  } catch (err) {
    toast(say("failed"), { kind: "error" });
  }
});
