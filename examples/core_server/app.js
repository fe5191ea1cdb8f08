// The core_server page in browser mode: the access token lives in this script's memory only, the
// refresh token in an HttpOnly cookie the script never sees. Refresh and logout send the
// double-submit CSRF token, read from the `__Host-csrf_token` cookie, in `X-CSRF-Token`.
// Every step appends one line `<step> <status>` to #status.
"use strict";

const CSRF_COOKIE = "__Host-csrf_token";
const status = document.getElementById("status");
let accessToken = null;

function report(line) {
  status.textContent += line + "\n";
}

function csrfToken() {
  for (const pair of document.cookie.split(";")) {
    const at = pair.indexOf("=");
    if (at > 0 && pair.slice(0, at).trim() === CSRF_COOKIE) {
      return pair.slice(at + 1).trim();
    }
  }
  return null;
}

// Sends a request, keeps the access token of a successful answer, reports the status; gives the
// status (0 when the request failed).
async function step(name, path, init, keepToken) {
  let response;
  try {
    response = await fetch(path, { credentials: "same-origin", cache: "no-store", ...init });
  } catch (error) {
    report(`${name} failed: ${error}`);
    return 0;
  }
  if (keepToken) {
    accessToken = null;
    if (response.ok) {
      const body = await response.json();
      accessToken = typeof body.access_token === "string" ? body.access_token : null;
    }
  }
  report(`${name} ${response.status}`);
  return response.status;
}

function csrfHeaders() {
  const token = csrfToken();
  return token === null ? {} : { "X-CSRF-Token": token };
}

async function login(event) {
  event.preventDefault();
  const form = event.target;
  await step("login", "/api/login", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username: form.username.value, password: form.password.value }),
  }, true);
}

async function listProcesses() {
  const headers = accessToken === null ? {} : { Authorization: `Bearer ${accessToken}` };
  await step("process", "/api/v3/process", { headers }, false);
}

async function refresh(name) {
  await step(name, "/api/login/refresh", { headers: csrfHeaders() }, true);
}

async function logout() {
  const code = await step("logout", "/api/logout", { method: "POST", headers: csrfHeaders() }, false);
  if (code === 204) {
    accessToken = null;
  }
}

document.getElementById("login").addEventListener("submit", login);
document.getElementById("process").addEventListener("click", listProcesses);
document.getElementById("refresh").addEventListener("click", () => refresh("refresh"));
document.getElementById("logout").addEventListener("click", logout);

// A reloaded page has no access token: resume the session through the refresh cookie when
// there is one (the CSRF cookie, which lives as long, says so).
if (csrfToken() !== null) {
  refresh("resume");
}
