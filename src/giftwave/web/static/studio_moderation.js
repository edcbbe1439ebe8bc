// The studio's moderation (docs/web.md): the room's chat over the same socket as a viewer, with
// Delete / Mute / Ban on each line (moderation.js); the creator's moderators, who is banned,
// and what viewers reported, read from the API and read again every REFRESH_MS.

import { api, boot, problemText, submitting, t, toast } from "./site.js";
import { ChatActions, chatLine } from "./moderation.js";

const $ = (id) => document.getElementById(id);
const CHAT_KEPT = 100;
const REFRESH_MS = 15_000;
const REASONS = { spam: "Spam", harassment: "Harassment", hate: "Hate", other: "Other" };
const BY_CODE = {
  user_not_found: "Nobody has that handle",
  cannot_moderate_self: "You moderate your own rooms already",
  moderator_limit: "You have as many moderators as a creator may",
  rate_limited: "Slow down a little",
};

function button(label, onClick, kind = "small") {
  const b = document.createElement("button");
  b.type = "button";
  b.className = kind;
  b.textContent = label;
  b.addEventListener("click", onClick);
  return b;
}

/** Sets the studio's moderation up on the room's `socket`; returns its room-event handler. */
export function setUpModeration({ streamId, socket }) {
  const me = boot.user;
  const log = $("chat-log");
  const actions = new ChatActions({ streamId, creatorId: me.id, me, moderates: true, send: (c) => socket.send(c) });

  function add(message) {
    const li = chatLine(message);
    actions.decorate(li);
    log.append(li);
    while (log.children.length > CHAT_KEPT) log.firstElementChild.remove();
    log.scrollTop = log.scrollHeight;
    $("chat-empty").hidden = true;
  }

  function deleted(ids) {
    for (const id of ids) {
      const li = log.querySelector(`li[data-id="${CSS.escape(id)}"]`);
      if (!li) continue;
      li.classList.add("deleted");
      li.querySelector(".text").textContent = t("Message deleted");
      li.querySelector(".line-actions")?.remove();
    }
  }

  $("chat-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const input = $("chat-text");
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    try { await socket.send({ cmd: "chat", text }); } catch (err) { input.value ||= text; toast(problemText(err), { kind: "error" }); }
  });

  // ---- moderators and bans ------------------------------------------------------------
  async function team() {
    try {
      const [{ moderators }, { bans }] = await Promise.all([
        api("GET", "/v1/me/moderators"), api("GET", `/v1/creators/${me.id}/bans`),
      ]);
      const list = $("moderators");
      list.replaceChildren(...moderators.map((m) => {
        const li = document.createElement("li");
        li.dataset.user = String(m.user_id);
        const who = document.createElement("bdi");
        who.className = "who";
        who.textContent = `@${m.handle}`;
        li.append(who, button(t("Remove"), async () => {
          try { await api("DELETE", `/v1/me/moderators/${m.user_id}`); } catch (err) { toast(problemText(err, BY_CODE), { kind: "error" }); }
          team();
        }));
        return li;
      }));
      const banned = $("bans");
      banned.replaceChildren(...bans.map((b) => {
        const li = document.createElement("li");
        li.dataset.user = String(b.user_id);
        const who = document.createElement("bdi");
        who.className = "who";
        who.textContent = `@${b.handle}`;
        li.append(who, button(t("Unban"), async () => {
          try { await api("DELETE", `/v1/creators/${me.id}/bans/${b.user_id}`); } catch (err) { toast(problemText(err, BY_CODE), { kind: "error" }); }
          team();
        }));
        return li;
      }));
      $("bans-empty").hidden = bans.length > 0;
    } catch (_) { /* the next round tries again */ }
  }

  const form = $("moderator-form");
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!form.reportValidity()) return;
    await submitting(form, async () => {
      await api("POST", "/v1/me/moderators", { handle: form.elements.handle.value.trim() });
      form.reset();
      toast(t("Saved"));
      await team();
    }, { byCode: BY_CODE });
  });

  // ---- reports ------------------------------------------------------------------------
  async function reports() {
    try {
      const found = await api("GET", `/v1/creators/${me.id}/reports`);
      const list = $("reports");
      list.replaceChildren(...found.reports.map((r) => {
        const li = chatLine(r); // the reported message, as the chat showed it
        const reason = document.createElement("span");
        reason.className = "reason muted";
        reason.textContent = `${t(REASONS[r.reason] || "Other")} · @${r.reporter_handle}`;
        li.append(reason, button(t("Ban"), async () => {
          try {
            await api("POST", `/v1/creators/${me.id}/bans`, { user_id: r.user_id });
            toast(t("{handle} is banned from all rooms of this creator", { handle: r.handle }));
          } catch (err) { toast(problemText(err, BY_CODE), { kind: "error" }); }
          team();
        }, "small danger"));
        return li;
      }));
      $("reports-empty").hidden = found.reports.length > 0;
    } catch (_) { /* the next round tries again */ }
  }

  document.addEventListener("giftwave:banned", () => team());
  team();
  reports();
  setInterval(() => { team(); reports(); }, REFRESH_MS);

  return (event) => {
    if (event.type === "snapshot") {
      log.replaceChildren();
      for (const m of event.chat) add(m);
    } else if (event.type === "chat") {
      add(event);
    } else if (event.type === "chat_deleted") {
      deleted(event.message_ids);
    }
  };
}
