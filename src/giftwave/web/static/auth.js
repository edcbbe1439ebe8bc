// Log in and sign up through the JSON API; the session cookie it sets is the browser's login.
// Sign-up says the handle's rule as it is typed, and, to someone too young to gift or buy coins,
// says so before they meet a refusal.

import { api, boot, fmt, localTarget, problemMessage, submitting, t } from "./site.js";

const form = document.getElementById("auth-form");
const handle = form.querySelector("input[name=handle]");
const handleRule = document.getElementById("handle-rule");
const HANDLE = handle ? new RegExp(`^(?:${handle.pattern})$`) : null;

/** The handle as it will be stored (lowercase), judged by the server's own pattern. */
function judgeHandle({ strict = false } = {}) {
  const value = handle.value.trim().toLowerCase();
  const bad = value === "" ? strict : !HANDLE.test(value);
  handle.setCustomValidity(bad ? problemMessage({ code: "invalid_handle" }) || handleRule.textContent : "");
  handleRule.dataset.state = bad ? "bad" : value ? "ok" : "";
  handle.setAttribute("aria-invalid", bad ? "true" : "false");
  return !bad;
}

handle?.addEventListener("input", () => judgeHandle());

function tooYoung(user, country) {
  if (user.can_gift !== false) return false;
  const age = boot.min_age_by_country?.[country] ?? boot.min_age;
  const notice = document.getElementById("age-notice");
  notice.querySelector(".age-text").textContent = t(
    "Your account is ready. Sending gifts and buying coins are only for people aged {min_age} and over; until then you can watch, chat and like.",
    { min_age: fmt(age) },
  );
  document.getElementById("age-continue").href = localTarget(form.dataset.next);
  form.hidden = true;
  notice.hidden = false;
  notice.querySelector("a").focus();
  return true;
}

form.addEventListener("submit", async (e) => {
  e.preventDefault();
  if (handle) judgeHandle({ strict: true });
  if (!form.reportValidity()) return;
  const data = Object.fromEntries(new FormData(form));
  let stay = false;
  await submitting(form, async () => {
    if (form.dataset.mode === "login") {
      await api("POST", "/v1/auth/login", { login: data.login, password: data.password });
    } else {
      const session = await api("POST", "/v1/auth/register", {
        handle: data.handle.trim().toLowerCase(),
        email: data.email.trim(),
        password: data.password,
        birth_date: data.birth_date,
        country: data.country,
        role: data.creator ? "creator" : "viewer",
      });
      stay = tooYoung(session.user, data.country);
    }
    if (!stay) location.href = localTarget(form.dataset.next);
  }, { navigates: true });
});
