// One live room over its WebSocket (docs/protocol.md): frames in order, resumed after a
// reconnect with since/epoch, each finished gift shown once, and commands that survive a
// reconnect: a gift not yet answered is sent again with the same id and idempotency key, so
// it is never charged twice however the connection comes and goes.
//
// A page logged in by cookie opens the socket with the cookie (the server checks the page's
// origin). A page with a bearer token (the embed, in another site's frame) passes `ticket`: a
// function that asks the API for a one-use ticket, called before every (re)connect, so no
// long-lived token is ever in the socket's URL (URLs end up in logs).

const FINISHED_KEPT = 500;
const MAX_DELAY_MS = 8000;

export function connectRoom(streamId, { onEvent, onStatus = () => {}, ticket = null }) {
  let ws = null;
  let resume = null; // {seq, epoch} of the last frame
  let delayMs = 500;
  let nextId = 1;
  let closed = false;
  const pending = new Map(); // id -> {command, resolve, reject}
  const finished = new Set(); // combo_ids shown as finished
  const finishedOrder = [];

  function rememberFinished(comboId) {
    if (finished.has(comboId)) return;
    finished.add(comboId);
    finishedOrder.push(comboId);
    if (finishedOrder.length > FINISHED_KEPT) finished.delete(finishedOrder.shift());
  }

  // The resume rule of the protocol: a snapshot's recent gifts not shown yet are shown, in
  // order; a gift event for a combo already shown as finished is dropped.
  function deliver(event) {
    if (event.type === "gift") {
      if (finished.has(event.combo_id)) return;
      if (event.final) rememberFinished(event.combo_id);
      onEvent(event);
    } else if (event.type === "snapshot") {
      const fresh = event.recent_gifts.filter((g) => !finished.has(g.combo_id));
      for (const g of event.recent_gifts) rememberFinished(g.combo_id);
      const combos = event.combos.filter((c) => !finished.has(c.combo_id));
      onEvent({ ...event, combos, fresh_gifts: fresh });
    } else {
      onEvent(event);
    }
  }

  function retry() {
    onStatus("reconnecting");
    setTimeout(open, delayMs);
    delayMs = Math.min(delayMs * 2, MAX_DELAY_MS);
  }

  async function open() {
    let oneUse = null;
    if (ticket) {
      try { oneUse = await ticket(); } catch (_) { if (!closed) retry(); return; }
    }
    if (closed) return;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const query = new URLSearchParams();
    if (oneUse) query.set("ticket", oneUse); // spent by this connection; a reconnect asks again
    if (resume) { query.set("since", String(resume.seq)); query.set("epoch", resume.epoch); }
    let url = `${scheme}://${location.host}/v1/streams/${encodeURIComponent(streamId)}/ws`;
    if (query.size) url += `?${query}`;
    ws = new WebSocket(url);
    ws.onopen = () => {
      delayMs = 500;
      onStatus("open");
      for (const p of pending.values()) ws.send(JSON.stringify(p.command));
    };
    ws.onmessage = (message) => {
      const frame = JSON.parse(message.data);
      if (frame.ack !== undefined) {
        const p = pending.get(frame.ack);
        if (!p) return;
        // A draining server refused the gift before billing it: it stays pending and goes again
        // (same idempotency key) once the socket, closed next with 1001, has reconnected.
        if (frame.error && frame.error.code === "draining") return;
        pending.delete(frame.ack);
        if (frame.error) p.reject(Object.assign(new Error(frame.error.detail), frame.error));
        else p.resolve(frame.result);
        return;
      }
      // For this viewer alone (a spending reminder): outside the room's sequence, never resumed.
      if (frame.personal !== undefined) { onEvent(frame.personal); return; }
      resume = { seq: frame.seq, epoch: frame.epoch };
      for (const event of frame.events) deliver(event);
    };
    ws.onclose = (close) => {
      ws = null;
      // Only a gift carries an idempotency key: it is sent again after the reconnect. A like or
      // a chat line may have landed already; sending it again could count it twice.
      for (const [id, p] of pending) {
        if (p.command.idempotency_key) continue;
        pending.delete(id);
        p.reject(Object.assign(new Error("connection lost"), { code: "connection_lost" }));
      }
      if (closed) return;
      if (close.code === 4404) {
        onStatus("gone");
        for (const p of pending.values()) p.reject(Object.assign(new Error("gone"), { code: "stream_not_found" }));
        pending.clear();
        return;
      }
      retry(); // a refused ticket (4401) too: the next attempt asks for a new one
    };
  }

  /** Sends a command; resolves with its result or rejects with {code, detail}. */
  function send(command) {
    const id = nextId++;
    const framed = { id, ...command };
    return new Promise((resolve, reject) => {
      pending.set(id, { command: framed, resolve, reject });
      if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(framed));
    });
  }

  open();
  return {
    send,
    close() { closed = true; ws?.close(); },
  };
}
