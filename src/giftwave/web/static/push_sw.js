// The service worker that shows a pushed notice (its JSON decrypted by the browser) and opens
// the stream it tells of; the "Stop these" action turns off that creator's notices with the
// notice's single-purpose token (no session in it).
const TEXT = {
  live: (n) => `@${n.creator} is live`,
  battle: (n) => `@${n.creator} started a battle with @${n.against}`,
  goal: (n) => `@${n.creator} is close to a goal`,
};

self.addEventListener("push", (event) => {
  const notice = event.data ? event.data.json() : null;
  if (!notice) return;
  const title = (TEXT[notice.kind] || TEXT.live)(notice);
  event.waitUntil(
    self.registration.showNotification(title, {
      body: notice.title || "",
      tag: `${notice.kind}:${notice.stream_id || ""}`,
      data: notice,
      actions: [{ action: "stop", title: "Stop these" }],
    }),
  );
});

self.addEventListener("notificationclick", (event) => {
  const notice = event.notification.data || {};
  event.notification.close();
  if (event.action === "stop") {
    event.waitUntil(
      fetch("/v1/notify/unsubscribe", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ token: notice.unsubscribe }),
      }),
    );
    return;
  }
  const target = notice.stream_id ? `/live/${notice.stream_id}` : "/me/inbox";
  event.waitUntil(self.clients.openWindow(target));
});
