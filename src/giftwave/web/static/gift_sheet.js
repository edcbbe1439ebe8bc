// The gift tray as a sheet on a phone (app.css): the Gift button opens it over the stream; the
// Close button, Escape or a tap on the stream closes it. Sending keeps it open, so a combo can
// go on. On a wider screen the tray is always shown and the Gift button is not.

const sheet = document.getElementById("gift-sheet");
const opener = document.getElementById("gift-open");

function isOpen() { return sheet.classList.contains("open"); }

function setOpen(open, { moveFocus = true } = {}) {
  sheet.classList.toggle("open", open);
  opener.setAttribute("aria-expanded", String(open));
  if (!moveFocus) return;
  if (open) sheet.querySelector(".gift-button:not(:disabled)")?.focus({ preventScroll: true });
  else opener.focus({ preventScroll: true });
}

if (sheet && opener) {
  opener.addEventListener("click", () => setOpen(!isOpen()));
  document.getElementById("gift-close")?.addEventListener("click", () => setOpen(false));
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && isOpen() && !document.querySelector("dialog[open]")) setOpen(false);
  });
  document.getElementById("stage")?.addEventListener("click", (e) => {
    if (isOpen() && !opener.contains(e.target)) setOpen(false, { moveFocus: false });
  });
}
