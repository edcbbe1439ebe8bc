// The gift tray as one tab stop (a toolbar with a roving tabindex, WAI-ARIA APG): Tab enters
// the tray on the gift last used (the first at the start) and leaves it with the next Tab; the
// arrow keys move between gifts, Home and End go to the first and the last. In a
// right-to-left page the tray runs right to left, so Left goes forward and Right back. Up and
// Down move too (the tray wraps into rows on a narrow screen). Only focus moves here: sending
// stays with the buttons' own Enter, Space and click (live.js).

const FORWARD = { ltr: "ArrowRight", rtl: "ArrowLeft" };
const BACK = { ltr: "ArrowLeft", rtl: "ArrowRight" };

export function rovingTray(tray) {
  if (!tray) return;
  const buttons = () => [...tray.querySelectorAll(".gift-button")];
  const all = buttons();
  if (!all.length) return;
  const current = (list) => Math.max(0, list.findIndex((b) => b.tabIndex === 0));
  const choose = (list, i) => {
    for (const [k, b] of list.entries()) b.tabIndex = k === i ? 0 : -1;
  };
  choose(all, 0);
  tray.addEventListener("focusin", (e) => {
    const list = buttons();
    const i = list.indexOf(e.target.closest(".gift-button"));
    if (i >= 0) choose(list, i); // a click or a tap makes it the one Tab comes back to
  });
  tray.addEventListener("keydown", (e) => {
    if (e.altKey || e.ctrlKey || e.metaKey) return;
    const list = buttons();
    const dir = getComputedStyle(tray).direction === "rtl" ? "rtl" : "ltr";
    const from = current(list);
    let to = null;
    if (e.key === FORWARD[dir] || e.key === "ArrowDown") to = Math.min(list.length - 1, from + 1);
    else if (e.key === BACK[dir] || e.key === "ArrowUp") to = Math.max(0, from - 1);
    else if (e.key === "Home") to = 0;
    else if (e.key === "End") to = list.length - 1;
    if (to === null) return;
    e.preventDefault(); // no page scroll
    choose(list, to);
    list[to].focus();
    list[to].scrollIntoView({ block: "nearest", inline: "nearest" });
  });
}
