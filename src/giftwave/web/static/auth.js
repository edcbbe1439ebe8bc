// Log in and sign up through the JSON API; the session cookie it sets is the browser's login.

import { api } from "./site.js";

const form = document.getElementById("auth-form");
const error = form.querySelector(".form-error");

form.addEventListener("submit", async (e) => {
  e.preventDefault();
  if (!form.reportValidity()) return;
  const data = Object.fromEntries(new FormData(form));
  error.hidden = true;
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  try {
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
    location.href = form.dataset.next || "/";
  } catch (err) {
    const problem = err.problem || {};
    const fields = (problem.errors || []).map((f) => `${f.loc.at(-1)}: ${f.msg}`);
    error.textContent = fields.length ? fields.join(" · ") : err.message;
    error.hidden = false;
    button.disabled = false;
  }
});
