// Moderation on each chat line, for the room and the creator studio (docs/web.md): the creator,
// the moderators they appointed and admins get Delete, Mute (for a chosen time) and Ban; any
// other logged-in viewer gets Report. One small menu per line, opened by its "⋯" button and
// used from the keyboard as a menu (arrows, Home/End, Escape gives the focus back).

import { api, t, toast } from "./site.js";
import { levelBadge, subBadge } from "./widgets.js";

const MUTE_MINUTES = [5, 60, 24 * 60];
const REASONS = [
  ["spam", "Report as spam"],
  ["harassment", "Report as harassment"],
  ["hate", "Report as hate"],
  ["other", "Report for another reason"],
];

const BY_CODE = {
  not_moderator: "Only the creator and their moderators can do this",
  cannot_ban_moderator: "Only the creator can ban a moderator",
  cannot_ban_creator: "The creator cannot be banned",
  message_not_found: "That message is no longer in the chat",
  rate_limited: "Slow down a little",
  connection_lost: "Reconnecting…",
};

function said(err) {
  const known = BY_CODE[err.code];
  toast(known ? t(known) : err.message || t("Something went wrong"), { kind: "error" });
}

// One chat message as a line of the room's chat (the sender's level badge, their handle, the
// text); the data attributes are what ChatActions reads to act on it (the message, its author).
export function chatLine(message) {
  const li = document.createElement("li");
  li.dataset.id = message.message_id;
  li.dataset.user = String(message.user_id);
  li.dataset.handle = message.handle;
  const who = document.createElement("bdi");
  who.className = "who";
  who.textContent = message.handle;
  const text = document.createElement("bdi");
  text.className = "text";
  text.textContent = message.text;
  const badge = levelBadge(message.level); // the sender's gifter level, when shown
  if (badge) li.append(badge, " ");
  li.append(who, " ");
  const sub = subBadge(message.sub_months); // months subscribed to the creator, when any
  if (sub) li.append(sub, " ");
  if (message.club) li.append(clubBadge(message.club), " "); // their fan club's, when a member
  li.append(text);
  return li;
}

/** A fan club member's badge: the club's name and their level in it (docs/community.md). */
export function clubBadge(club) {
  const badge = document.createElement("bdi");
  badge.className = "club-badge";
  badge.dataset.level = String(club.level);
  badge.textContent = `${club.name} ${club.level.toLocaleString(document.documentElement.lang || undefined)}`;
  return badge;
}

export class ChatActions {
  /** `send`: the room socket's send(command); `moderates`: this visitor moderates the room. */
  constructor({ streamId, creatorId, me, moderates = false, send }) {
    this.streamId = streamId;
    this.creatorId = creatorId;
    this.me = me; // {id, handle} or null
    this.moderates = moderates;
    this.send = send;
    this.open = null; // {menu, button}
    document.addEventListener("pointerdown", (e) => {
      if (this.open && !this.open.menu.contains(e.target) && e.target !== this.open.button) this.close(false);
    });
    // The menu stays by its line: when the chat scrolls or the window changes, it closes.
    document.addEventListener("scroll", (e) => { if (!this.open?.menu.contains(e.target)) this.close(false); }, true);
    window.addEventListener("resize", () => this.close(false));
  }

  /** Lines drawn before the visitor's rights were known get their button now. */
  setModerates(moderates, log) {
    this.moderates = moderates;
    for (const li of log?.querySelectorAll("li[data-id]") || []) {
      li.querySelector(".line-actions")?.remove();
      this.decorate(li);
    }
  }

  items(li) {
    const userId = Number(li.dataset.user);
    const own = this.me && userId === this.me.id;
    if (!this.me || li.classList.contains("deleted")) return [];
    if (this.moderates) {
      const list = [["delete", t("Delete")]];
      if (!own && userId !== this.creatorId) {
        for (const minutes of MUTE_MINUTES) {
          list.push([`mute:${minutes}`, minutes < 60 ? t("Mute for {minutes} minutes", { minutes })
            : minutes < 1440 ? t("Mute for an hour") : t("Mute for a day")]);
        }
        list.push(["ban", t("Ban from all rooms")]);
      }
      return list;
    }
    return own ? [] : REASONS.map(([reason, label]) => [`report:${reason}`, t(label)]);
  }

  /** Adds the line's "⋯" button, when the visitor can do anything with it. */
  decorate(li) {
    if (!li.dataset.id || !this.items(li).length) return;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "line-actions";
    button.textContent = "⋯";
    button.setAttribute("aria-haspopup", "menu");
    button.setAttribute("aria-expanded", "false");
    button.setAttribute("aria-label", t("Actions for the message of {handle}", { handle: li.dataset.handle || "" }));
    button.addEventListener("click", () => (this.open?.button === button ? this.close(true) : this.show(li, button)));
    button.addEventListener("keydown", (e) => {
      if (e.key === "ArrowDown" || e.key === "ArrowUp") { e.preventDefault(); this.show(li, button, e.key === "ArrowUp"); }
    });
    li.append(button);
  }

  show(li, button, last = false) {
    this.close(false);
    const menu = document.createElement("div");
    menu.className = "line-menu";
    menu.setAttribute("role", "menu");
    menu.setAttribute("aria-label", button.getAttribute("aria-label"));
    for (const [action, label] of this.items(li)) {
      const item = document.createElement("button");
      item.type = "button";
      item.setAttribute("role", "menuitem");
      item.tabIndex = -1;
      item.dataset.action = action;
      item.textContent = label;
      if (action === "ban" || action === "delete") item.classList.add("danger");
      item.addEventListener("click", () => { this.close(true); this.act(li, action); });
      menu.append(item);
    }
    menu.addEventListener("keydown", (e) => this.keys(e, menu));
    // On the page, not in the line: the chat scrolls, and would clip a menu inside it.
    document.body.append(menu);
    place(menu, button);
    button.setAttribute("aria-expanded", "true");
    this.open = { menu, button };
    const items = [...menu.children];
    (last ? items.at(-1) : items[0]).focus();
  }

  keys(e, menu) {
    const items = [...menu.querySelectorAll("[role=menuitem]")];
    const at = items.indexOf(document.activeElement);
    const go = (i) => { e.preventDefault(); items[(i + items.length) % items.length].focus(); };
    if (e.key === "ArrowDown") go(at + 1);
    else if (e.key === "ArrowUp") go(at - 1);
    else if (e.key === "Home") go(0);
    else if (e.key === "End") go(items.length - 1);
    else if (e.key === "Escape") { e.preventDefault(); this.close(true); }
    else if (e.key === "Tab") this.close(false);
  }

  close(refocus) {
    if (!this.open) return;
    const { menu, button } = this.open;
    this.open = null;
    menu.remove();
    button.setAttribute("aria-expanded", "false");
    if (refocus && button.isConnected) button.focus();
  }

  async act(li, action) {
    const userId = Number(li.dataset.user);
    const handle = li.dataset.handle || "";
    const [verb, arg] = action.split(":");
    try {
      if (verb === "delete") {
        await this.send({ cmd: "delete_message", message_id: li.dataset.id });
      } else if (verb === "mute") {
        await this.send({ cmd: "mute", user_id: userId, minutes: Number(arg) });
        toast(t("{handle} is muted", { handle }));
      } else if (verb === "ban") {
        await api("POST", `/v1/creators/${this.creatorId}/bans`, { user_id: userId });
        toast(t("{handle} is banned from all rooms of this creator", { handle }));
        document.dispatchEvent(new CustomEvent("giftwave:banned", { detail: { userId } }));
      } else if (verb === "report") {
        await api("POST", `/v1/streams/${encodeURIComponent(this.streamId)}/reports`, {
          message_id: li.dataset.id, reason: arg,
        });
        toast(t("Thank you: the moderators will look at it"));
      }
    } catch (err) {
      said(err);
    }
  }
}

const MARGIN_PX = 8;

/** Below its button (above it when there is no room), at the line's end in either direction of
 *  writing, always inside the window. */
function place(menu, button) {
  const r = button.getBoundingClientRect();
  const w = menu.offsetWidth;
  const h = menu.offsetHeight;
  const below = r.bottom + 4 + h <= innerHeight - MARGIN_PX;
  const top = below ? r.bottom + 4 : Math.max(MARGIN_PX, r.top - 4 - h);
  const rtl = getComputedStyle(button).direction === "rtl";
  const start = rtl ? r.left : r.right - w;
  const left = Math.min(Math.max(MARGIN_PX, start), innerWidth - w - MARGIN_PX);
  menu.style.top = `${Math.round(top)}px`;
  menu.style.left = `${Math.round(left)}px`;
}

/** Whether the logged-in visitor moderates this creator's rooms (the server decides). */
export async function moderatesRoom(creatorId) {
  try {
    return (await api("GET", `/v1/me/moderates/${creatorId}`)).moderator === true;
  } catch (_) {
    return false;
  }
}
