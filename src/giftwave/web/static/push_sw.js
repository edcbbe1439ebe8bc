// The service worker that shows a pushed notice (its JSON decrypted by the browser) and opens
// the stream it tells of; the "Stop these" action turns off that creator's notices with the
// notice's single-purpose token (no session in it). The server writes the words, in the
// recipient's language (web/push_text.py): this worker shows what it receives.
self.addEventListener("push", (event) => {
  const notice = event.data ? event.data.json() : null;
  if (!notice) return;
  const shown = notice.notification || {};
  event.waitUntil(
    self.registration.showNotification(shown.title || `@${notice.creator || ""}`, {
      body: shown.body || "",
      lang: shown.lang || "",
      dir: shown.dir || "auto",
      tag: `${notice.kind}:${notice.stream_id || ""}`,
      data: notice,
      actions: notice.unsubscribe && shown.stop ? [{ action: "stop", title: shown.stop }] : [],
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
