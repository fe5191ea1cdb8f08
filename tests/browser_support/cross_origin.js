// A page on another origin using the API of `?api=<origin>` through CORS with Bearer tokens
// only: no cookie is sent or stored (`credentials: "omit"`), the tokens stay in memory. On
// submit it logs in, lists processes, refreshes with the refresh token when the login gave one,
// and lists processes with the new access token; one line `<step> <status>` per step in #status.
"use strict";

const api = new URLSearchParams(location.search).get("api");
const status = document.getElementById("status");

function report(line) {
  status.textContent += line + "\n";
}

async function call(name, path, init) {
  try {
    const response = await fetch(api + path, { credentials: "omit", cache: "no-store", ...init });
    const body = response.headers.get("Content-Type") === "application/json"
      ? await response.json()
      : await response.text();
    report(`${name} ${response.status}`);
    return { ok: response.ok, body };
  } catch (error) {
    report(`${name} failed: ${error}`);
    return { ok: false, body: null };
  }
}

async function run(event) {
  event.preventDefault();
  const form = event.target;
  const login = await call("login", "/api/login", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username: form.username.value, password: form.password.value }),
  });
  if (!login.ok) return;
  report(`tokens ${Object.keys(login.body).sort().join(",")}`);
  const bearer = (token) => ({ headers: { Authorization: `Bearer ${token}` } });
  const first = await call("process", "/api/v3/process", bearer(login.body.access_token));
  if (first.ok) report(`processes ${JSON.stringify(first.body)}`);
  if (typeof login.body.refresh_token !== "string") return;
  const refreshed = await call("refresh", "/api/login/refresh", bearer(login.body.refresh_token));
  if (!refreshed.ok) return;
  await call("process", "/api/v3/process", bearer(refreshed.body.access_token));
}

document.getElementById("login").addEventListener("submit", run);
