// What every page shares: the boot data the server rendered, messages in the page's language,
// number formatting, toasts, JSON API calls with the CSRF header, the coin balance, log out.

export const boot = JSON.parse(document.getElementById("boot")?.textContent || "{}");
export const locale = boot.locale || document.documentElement.lang || "en";
const numberLocale = locale === "ar" ? "ar-u-nu-latn" : locale; // Latin digits, as the server writes them
// Grouped from four digits, as Babel writes them in the templates: one page never shows both
// "1.000" and "1000" (Spanish CLDR leaves four digits ungrouped; Babel does not).
const numbers = new Intl.NumberFormat(numberLocale, { useGrouping: "always" });
const plurals = new Intl.PluralRules(numberLocale);

/** A message in the page's language; `{name}` placeholders filled from `vars`. */
export function t(message, vars = {}) {
  const text = boot.messages?.[message] ?? message;
  return text.replace(/\{(\w+)\}/g, (_, k) => (k in vars ? String(vars[k]) : `{${k}}`));
}

export const fmt = (n) => numbers.format(n);

/** A count in words in the page's language: the catalogue's form for `n`'s plural category
 *  (the server sends each pair by category), `{n}` written as fmt() writes it. */
export function tn(singular, n, vars = {}) {
  const forms = boot.plurals?.[singular] || {};
  const text = forms[plurals.select(n)] ?? forms.other ?? singular;
  return text.replace(/\{(\w+)\}/g, (_, k) => (k === "n" ? fmt(n) : k in vars ? String(vars[k]) : `{${k}}`));
}

/** A refusal of the API (problem+json or a socket's error) in the page's language, by its
 *  stable code; `{field}`s from the problem, else from the user's boot data; else null. */
export function problemMessage(problem) {
  const text = boot.problems?.[problem?.code];
  if (!text) return null;
  return text.replace(/\{(\w+)\}/g, (_, k) => {
    const v = problem[k] ?? boot.user?.[k];
    return v === undefined ? `{${k}}` : typeof v === "number" ? fmt(v) : String(v);
  });
}

/** An amount in its currency's minor unit (cents; the yen itself for JPY; fils, a thousandth,
 *  for KWD) as money in the page's language. The digits are the server's (money.py), sent in the
 *  boot data, so the page and the API always agree on what 160 JPY is. */
export function money(minor, currency) {
  const digits = boot.currency_exponents?.[currency] ?? 2;
  const amount = Number(minor) / 10 ** digits;
  try {
    return new Intl.NumberFormat(numberLocale, {
      style: "currency", currency, minimumFractionDigits: digits, maximumFractionDigits: digits,
      useGrouping: "always",
    }).format(amount);
  } catch (_) { // a code this browser does not know: the number and the code
    return `${new Intl.NumberFormat(numberLocale, { minimumFractionDigits: digits }).format(amount)} ${currency}`;
  }
}

export function toast(text, { link = null, linkText = "", kind = "info", ms = 4000 } = {}) {
  const box = document.getElementById("toasts");
  if (!box) return;
  const el = document.createElement("div");
  el.className = `toast ${kind}`;
  el.textContent = text;
  if (link) {
    const a = document.createElement("a");
    a.href = link;
    a.textContent = linkText;
    el.append(" ", a);
  }
  box.append(el);
  while (box.children.length > 3) box.firstElementChild.remove();
  setTimeout(() => el.remove(), ms);
}

function csrf() {
  const m = document.cookie.match(/(?:^|;\s*)gw_csrf=([^;]+)/);
  return m ? decodeURIComponent(m[1]) : "";
}

export class ApiError extends Error {
  constructor(status, problem) {
    super(problemMessage(problem) || problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.code = problem?.code || "http_error";
    this.problem = problem;
  }
}

// Inside another site's iframe (the embed) the browser sends no giftwave cookie: the panel logs
// in itself and keeps the bearer token in memory, and for this tab in the frame's storage where
// the browser allows it (many refuse a third-party frame any storage).
const TOKEN_KEY = "gw_token";
let memoryToken = null;

export function bearer() {
  if (memoryToken) return memoryToken;
  try { return sessionStorage.getItem(TOKEN_KEY); } catch (_) { return null; }
}

export function keepToken(token) {
  memoryToken = token;
  try { sessionStorage.setItem(TOKEN_KEY, token); } catch (_) { /* memory only */ }
}

/** A JSON API call as the logged-in browser; problem+json answers throw ApiError. */
export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const token = bearer();
  if (token) headers.Authorization = `Bearer ${token}`;
  else if (method !== "GET") headers["X-CSRF-Token"] = csrf();
  const r = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  const type = r.headers.get("content-type") || "";
  const data = type.includes("json") ? await r.json() : null;
  if (!r.ok) throw new ApiError(r.status, data);
  return data;
}

/** A table row of text cells. */
export function textRow(cells) {
  const tr = document.createElement("tr");
  for (const text of cells) {
    const td = document.createElement("td");
    td.textContent = text;
    tr.append(td);
  }
  return tr;
}

/** What went wrong, for people: a known code's message from `byCode` (a message to translate,
 *  or a function of the error), else the fields the API refused, else its detail. */
export function problemText(error, byCode = {}) {
  const known = byCode[error.code];
  if (typeof known === "function") return known(error);
  if (known) return t(known);
  const translated = problemMessage(error.problem || error);
  if (translated) return translated;
  const fields = (error.problem?.errors || []).map((f) => `${f.loc.at(-1)}: ${f.msg}`);
  return fields.length ? fields.join(" · ") : error.message || t("Something went wrong");
}

/** Runs a form's request with its submit button disabled (until the page is left, if it
 *  `navigates` on success); a refusal shows in the form's .form-error. */
export async function submitting(form, work, { byCode = {}, navigates = false } = {}) {
  const error = form.querySelector(".form-error");
  const button = form.querySelector("button[type=submit]");
  error.hidden = true;
  button.disabled = true;
  try {
    await work();
    if (!navigates) button.disabled = false;
  } catch (err) {
    error.textContent = problemText(err, byCode);
    error.hidden = false;
    button.disabled = false;
  }
}

/** A random key for a value-moving request: the same key on a retry, never a second charge. */
export function idempotencyKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

let balance = null;
export const getBalance = () => balance;

export function setBalance(coins) {
  balance = coins;
  const el = document.getElementById("balance");
  if (el) {
    el.textContent = fmt(coins);
    el.dataset.balance = String(coins);
  }
}

export async function refreshBalance() {
  if (!boot.user && !bearer()) return null;
  try {
    const wallet = await api("GET", "/v1/me/wallet");
    setBalance(wallet.coins);
    return wallet.coins;
  } catch (_) {
    return null;
  }
}

/** Where to go after logging in: `next` as the browser reads it (tabs and newlines dropped,
 *  backslashes as slashes), only when that is a page of this site; else the home page. The
 *  server checks the same (pages.py `_local`); this holds if the page gets `next` otherwise. */
export function localTarget(next) {
  let url;
  try { url = new URL(next || "/", location.origin); } catch (_) { return "/"; }
  if (url.origin !== location.origin) return "/";
  return url.pathname + url.search + url.hash;
}

export function loginUrl() {
  return `/login?next=${encodeURIComponent(location.pathname + location.search)}`;
}

document.getElementById("logout")?.addEventListener("click", async () => {
  try { sessionStorage.removeItem(TOKEN_KEY); } catch (_) { /* nothing kept */ }
  try { await api("POST", "/v1/auth/logout"); } catch (_) { /* gone already */ }
  location.href = "/";
});

// Here, not in an onchange attribute: the Content-Security-Policy runs no inline script.
const lang = document.getElementById("lang");
lang?.addEventListener("change", () => lang.form.submit());

refreshBalance();
