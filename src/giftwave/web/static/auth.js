// Log in and sign up through the JSON API; the session cookie it sets is the browser's login.

import { api, localTarget, submitting } from "./site.js";

const form = document.getElementById("auth-form");

form.addEventListener("submit", async (e) => {
  e.preventDefault();
  if (!form.reportValidity()) return;
  const data = Object.fromEntries(new FormData(form));
  await submitting(form, async () => {
    if (form.dataset.mode === "login") {
      await api("POST", "/v1/auth/login", { login: data.login, password: data.password });
    } else {
      await api("POST", "/v1/auth/register", {
        handle: data.handle.trim().toLowerCase(),
        email: data.email.trim(),
        password: data.password,
        birth_date: data.birth_date,
        country: data.country.trim().toUpperCase(),
        role: data.creator ? "creator" : "viewer",
      });
    }
    location.href = localTarget(form.dataset.next);
  }, { navigates: true });
});
