// The embeddable gift panel inside another site's iframe (an Owncast external action). The
// browser sends no giftwave cookie there, so the panel logs in itself: the bearer token is used
// for the API (site.js keeps it) and to ask for a one-use ticket each time the room's socket
// connects (live.js); the token itself never goes in the socket's URL.

import { api, bearer, boot, keepToken, refreshBalance } from "./site.js";

const form = document.getElementById("embed-login");
const open = document.getElementById("embed-login-open");

async function whoAmI() {
  if (boot.user || !bearer()) return;
  try {
    const me = await api("GET", "/v1/me");
    boot.user = { id: me.id, handle: me.handle, role: me.role };
    open?.remove();
    document.querySelector(".embed .balance")?.removeAttribute("hidden");
  } catch (_) {
    try { sessionStorage.removeItem("gw_token"); } catch (__) { /* nothing kept */ }
  }
}

open?.addEventListener("click", () => { form.hidden = !form.hidden; form.querySelector("input")?.focus(); });

form?.addEventListener("submit", async (e) => {
  e.preventDefault();
  const data = Object.fromEntries(new FormData(form));
  const error = form.querySelector(".form-error");
  try {
    const session = await api("POST", "/v1/auth/login", { login: data.login, password: data.password });
    keepToken(session.token);
    form.hidden = true;
    await whoAmI();
    await refreshBalance();
    window.dispatchEvent(new CustomEvent("giftwave:login")); // the room reconnects as this user
  } catch (err) {
    error.textContent = err.message;
    error.hidden = false;
  }
});

await whoAmI();
