//! Real headless Chromium against the example server, driven over WebDriver (chromedriver, with
//! the `fantoccini` client).
//!
//! - Browser mode (`CORE_API_AUTH_COOKIES`) through the page the example serves at `/`: login,
//!   a protected call, the refresh token kept out of the page's reach, refresh through the
//!   cookie with rotation (the spent token refused), forms posted from other origins refused,
//!   logout clearing the cookies and reaching the other instance of a Redis fleet; and the
//!   access-token cookie for top-level requests.
//! - A page on another origin using the API with Bearer tokens through CORS, without cookies.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`/usr/bin/chromium` and `/usr/bin/chromedriver`;
//! `TJL_CHROMIUM` and `TJL_CHROMEDRIVER` name others). Without them the browser tests pass with a
//! message saying they skipped, unless `TJL_REQUIRE_BROWSER` is set and not empty (CI sets it):
//! then they fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// The flow on Redis needs the `redis` feature; without it some helpers go unused.
#![cfg_attr(not(feature = "redis"), allow(dead_code))]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::Router;
use axum::response::IntoResponse;
use axum::routing::get;
use common::*;
use fantoccini::{Client, ClientBuilder, Locator};
use http::{HeaderValue, header};
use hyper_util::client::legacy::connect::HttpConnector;
use tower_jwt_login::config::CoreAuthConfig;

/// How long the page may take for one step.
const STEP_TIMEOUT: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------------------------
// The browser

/// Chromium's flags: headless, and nothing that reaches beyond this machine.
const CHROMIUM_FLAGS: [&str; 8] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

/// The browser's programs, or `None` (with a message) when they are absent and not required.
fn browser_programs() -> Option<(PathBuf, PathBuf)> {
    let program = |var: &str, default: &str| {
        std::env::var_os(var).map_or_else(|| PathBuf::from(default), PathBuf::from)
    };
    let chromium = program("TJL_CHROMIUM", "/usr/bin/chromium");
    let driver = program("TJL_CHROMEDRIVER", "/usr/bin/chromedriver");
    let missing: Vec<String> = [&chromium, &driver]
        .into_iter()
        .filter(|p| !p.is_file())
        .map(|p| p.display().to_string())
        .collect();
    if missing.is_empty() {
        return Some((chromium, driver));
    }
    let missing = format!(
        "{} missing (apt-get install chromium chromium-driver)",
        missing.join(" and ")
    );
    assert!(
        std::env::var_os("TJL_REQUIRE_BROWSER").is_none_or(|v| v.is_empty()),
        "TJL_REQUIRE_BROWSER is set but {missing}"
    );
    eprintln!("SKIPPED: the browser test needs Chromium: {missing}");
    None
}

/// chromedriver in a process group of its own (with the browsers it starts) and the browser's
/// profile directory. Dropping it ends them all and removes the profile, also when a test fails.
struct Driver {
    child: Child,
    port: u16,
    profile: PathBuf,
}

impl Driver {
    fn start(program: &PathBuf) -> Driver {
        let profile = std::env::temp_dir().join(format!(
            "tjl-browser-{}-{}",
            std::process::id(),
            tower_jwt_login::session::new_session_id()
        ));
        std::fs::create_dir(&profile).unwrap();
        let mut child = Command::new(program)
            .arg("--port=0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .process_group(0)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut driver = Driver {
            child,
            port: 0,
            profile,
        };
        driver.port = loop {
            let line = lines
                .next()
                .expect("chromedriver exited before it listened")
                .unwrap();
            // `ChromeDriver was started successfully on port 40531.`
            if let Some(rest) = line.split("started successfully on port ").nth(1) {
                break rest.trim_end_matches('.').parse().unwrap();
            }
        };
        // Keep reading so that chromedriver never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        driver
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // chromedriver's /shutdown quits every browser it started, then itself.
        if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = stream.write_all(
                b"GET /shutdown HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
            );
            let _ = stream.read_to_end(&mut Vec::new());
        }
        // Whatever is left of the group is killed. chromedriver is not reaped before this, so
        // the group id is still this group's.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// A WebDriver session in a fresh headless Chromium. The client is dropped before the driver.
struct Browser {
    client: Client,
    _driver: Driver,
}

impl Browser {
    /// The browser, or `None` when the test should skip (see [`browser_programs`]).
    async fn start() -> Option<Browser> {
        let (chromium, program) = browser_programs()?;
        let driver = Driver::start(&program);
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|f| (*f).to_owned()).collect();
        args.push(format!("--user-data-dir={}", driver.profile.display()));
        let capabilities = serde_json::json!({
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": chromium, "args": args },
            // A page that hangs fails the test in seconds, not in WebDriver's five minutes.
            "timeouts": { "pageLoad": 20_000, "script": 10_000 },
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&driver.url())
            .await
            .expect("a WebDriver session in Chromium");
        Some(Browser {
            client,
            _driver: driver,
        })
    }

    async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    /// Runs `script` (a function body) in the page and gives its result.
    async fn eval(&self, script: &str) -> serde_json::Value {
        self.client.execute(script, Vec::new()).await.unwrap()
    }

    async fn click(&self, id: &str) {
        self.client
            .find(Locator::Id(id))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }

    async fn type_into(&self, id: &str, text: &str) {
        self.client
            .find(Locator::Id(id))
            .await
            .unwrap()
            .send_keys(text)
            .await
            .unwrap();
    }

    /// Fills the login form with admin's credentials and submits it.
    async fn submit_login(&self) {
        self.type_into("username", USER).await;
        self.type_into("password", PASSWORD).await;
        self.click("login-button").await;
    }

    /// The lines of `#status`.
    async fn status_lines(&self) -> Vec<String> {
        let text = self
            .eval("return document.getElementById('status').textContent;")
            .await;
        text.as_str().unwrap().lines().map(str::to_owned).collect()
    }

    /// Waits until `#status` holds `seen + expected.len()` lines and asserts that the new ones
    /// are `expected`; gives the new count.
    async fn expect_status(&self, seen: usize, expected: &[&str]) -> usize {
        let deadline = Instant::now() + STEP_TIMEOUT;
        let lines = loop {
            let lines = self.status_lines().await;
            if lines.len() >= seen + expected.len() {
                break lines;
            }
            assert!(
                Instant::now() < deadline,
                "#status after {STEP_TIMEOUT:?}: {lines:?}; waiting for {expected:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(lines[seen..], *expected, "#status: {lines:?}");
        seen + expected.len()
    }

    /// The names of the cookies the browser would send to the current page's URL (WebDriver
    /// sees HttpOnly cookies too).
    async fn cookie_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .client
            .get_all_cookies()
            .await
            .unwrap()
            .iter()
            .map(|c| c.name().to_owned())
            .collect();
        names.sort();
        names
    }
}

// ---------------------------------------------------------------------------------------------
// The servers

/// The example server on 127.0.0.1:0, configured like `cargo run --example core_server` with
/// admin/datarhei/secretsecret, no failure delay, and the variables `vars`.
async fn spawn_example(vars: &[(&str, &str)]) -> SocketAddr {
    let mut env: Vec<(String, String)> = [
        ("CORE_API_AUTH_ENABLE", "true"),
        ("CORE_API_AUTH_USERNAME", USER),
        ("CORE_API_AUTH_PASSWORD", PASSWORD),
        ("CORE_API_AUTH_JWT_SECRET", SECRET),
        ("CORE_API_AUTH_LOGIN_FAILURE_DELAY", "0"),
    ]
    .iter()
    .chain(vars)
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    env.reverse(); // the last setting of a variable wins
    let auth = CoreAuthConfig::default()
        .with_lookup(|k| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
        .unwrap();
    spawn_router(core_server::app_from_env(&auth).await.unwrap()).await
}

const CROSS_ORIGIN_HTML: &str = include_str!("browser_support/cross_origin.html");
const CROSS_ORIGIN_JS: &str = include_str!("browser_support/cross_origin.js");
const POST_FORM_HTML: &str = include_str!("browser_support/post_form.html");

/// The test's own site, on another port than the example server: the page that uses the API
/// through CORS, and a form that posts anywhere.
async fn spawn_other_site() -> SocketAddr {
    let file = |content_type: &'static str, body: &'static str| {
        get(move || async move {
            (
                [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
                body,
            )
                .into_response()
        })
    };
    let app = Router::new()
        .route(
            "/cross_origin.html",
            file("text/html; charset=utf-8", CROSS_ORIGIN_HTML),
        )
        .route(
            "/cross_origin.js",
            file("text/javascript; charset=utf-8", CROSS_ORIGIN_JS),
        )
        .route(
            "/post_form.html",
            file("text/html; charset=utf-8", POST_FORM_HTML),
        );
    spawn_router(app).await
}

// ---------------------------------------------------------------------------------------------
// The tests

#[tokio::test]
async fn the_page_and_its_script_are_served_with_a_strict_content_security_policy() {
    let addr = spawn_example(&[]).await;
    let csp = "default-src 'none'; script-src 'self'; connect-src 'self'; form-action 'self'; \
               base-uri 'none'; frame-ancestors 'none'";
    for (path, content_type, needle) in [
        (
            "/",
            "text/html; charset=utf-8",
            "<script src=\"/app.js\" defer></script>",
        ),
        (
            "/app.js",
            "text/javascript; charset=utf-8",
            "\"use strict\";",
        ),
    ] {
        let reply = Req::get(path).send(addr).await;
        assert_eq!(reply.status, 200, "{path}");
        assert_eq!(reply.header("content-type"), Some(content_type), "{path}");
        assert_eq!(reply.header("content-security-policy"), Some(csp), "{path}");
        assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(reply.header("referrer-policy"), Some("no-referrer"));
        assert_eq!(reply.header("cache-control"), Some("no-cache"));
        assert!(reply.text().contains(needle), "{path}: {}", reply.text());
    }
    // The page has no inline script for the policy to allow.
    let page = Req::get("/").send(addr).await;
    assert_eq!(page.text().matches("<script").count(), 1);
    // Public: no token needed, and no challenge.
    assert_eq!(page.header("www-authenticate"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_on_another_origin_logs_in_with_bearer_tokens_through_cors() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let site = spawn_other_site().await;
    // `localhost` and `127.0.0.1` are different sites: the page is cross-site to the API.
    let page_origin = format!("http://localhost:{}", site.port());
    let unlisted_origin = format!("http://127.0.0.1:{}", site.port());
    let cors = ("CORE_API_AUTH_CORS_ORIGINS", page_origin.as_str());
    let sessions = ("CORE_API_AUTH_SESSIONS", "memory");
    // Core's JSON protocol: both tokens in the login's body; the page refreshes with its
    // refresh token.
    let core = spawn_example(&[sessions, cors]).await;
    // Browser mode on the same API: a listed origin is one that uses the cookies, so the
    // login's body carries the access token alone (the refresh token goes into a cookie, which
    // a page that omits credentials never stores). An API client without Fetch Metadata would
    // get both tokens (tests/kit.rs).
    let browser_mode = spawn_example(&[sessions, cors, ("CORE_API_AUTH_COOKIES", "true")]).await;
    let runs: [(SocketAddr, &[&str]); 2] = [
        (
            core,
            &[
                "login 200",
                "tokens access_token,refresh_token",
                "process 200",
                "processes []",
                "refresh 200",
                "process 200",
            ],
        ),
        (
            browser_mode,
            &[
                "login 200",
                "tokens access_token",
                "process 200",
                "processes []",
            ],
        ),
    ];
    for (api, expected) in runs {
        let api_origin = format!("http://127.0.0.1:{}", api.port());
        browser
            .goto(&format!("{page_origin}/cross_origin.html?api={api_origin}"))
            .await;
        browser.submit_login().await;
        browser.expect_status(0, expected).await;

        // Without credentials the browser stored nothing for the API's origin: no cookie under
        // `/` nor under `/api/logout` (a GET there is a harmless 404).
        browser.goto(&format!("{api_origin}/api/logout")).await;
        assert_eq!(browser.cookie_names().await, Vec::<String>::new());

        // The same page from an origin the API does not list: the preflight does not allow it,
        // and the page gets no answer.
        browser
            .goto(&format!(
                "{unlisted_origin}/cross_origin.html?api={api_origin}"
            ))
            .await;
        browser.submit_login().await;
        browser
            .expect_status(0, &["login failed: TypeError: Failed to fetch"])
            .await;
    }
}

// ---------------------------------------------------------------------------------------------
// Browser mode: the page at `/` with the refresh token in an HttpOnly cookie

/// Records every answer the page's `fetch` receives into `window.answers` (`[url, status, body]`)
/// before the page sees it, as the browser's network panel would: the test reads the access
/// tokens the page keeps in memory from there.
const RECORD_ANSWERS: &str = r#"
    const fetch = window.fetch;
    window.answers = [];
    window.fetch = async (...args) => {
        const response = await fetch(...args);
        window.answers.push([String(args[0]), response.status, await response.clone().text()]);
        return response;
    };
"#;

const CSRF_FAILED: &str =
    "{\"code\":403,\"message\":\"Forbidden\",\"details\":[\"CSRF check failed\"]}\n";
const REFRESH_COOKIE: &str = "__Secure-refresh_token";
const CSRF_COOKIE: &str = "__Host-csrf_token";

impl Browser {
    /// The last answer the page received, as `(url, status, body)`.
    async fn last_answer(&self) -> (String, u16, String) {
        let v = self
            .eval("return window.answers[window.answers.length - 1];")
            .await;
        (
            v[0].as_str().unwrap().to_owned(),
            u16::try_from(v[1].as_u64().unwrap()).unwrap(),
            v[2].as_str().unwrap().to_owned(),
        )
    }

    /// The access token of the last answer, which must be `{"access_token":"…"}\n` alone.
    async fn last_access_token(&self) -> String {
        let (url, status, body) = self.last_answer().await;
        assert_eq!(status, 200, "{url}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let token = v["access_token"].as_str().unwrap().to_owned();
        assert_eq!(body, format!("{{\"access_token\":\"{token}\"}}\n"), "{url}");
        token
    }

    /// The value of the cookie `name` the browser holds for the current page's URL.
    async fn cookie(&self, name: &str) -> Option<String> {
        self.client
            .get_all_cookies()
            .await
            .unwrap()
            .into_iter()
            .find(|c| c.name() == name)
            .map(|c| c.value().to_owned())
    }

    /// Every cookie the browser would send to the current page's URL, without its value:
    /// `name path=… [httponly] [secure] samesite=…`, sorted.
    async fn cookies_stored(&self) -> Vec<String> {
        let mut cookies: Vec<String> = self
            .client
            .get_all_cookies()
            .await
            .unwrap()
            .iter()
            .map(|c| {
                let mut text = format!("{} path={}", c.name(), c.path().unwrap_or_default());
                if c.http_only() == Some(true) {
                    text.push_str(" httponly");
                }
                if c.secure() == Some(true) {
                    text.push_str(" secure");
                }
                if let Some(same_site) = c.same_site() {
                    text.push_str(&format!(" samesite={same_site}"));
                }
                text
            })
            .collect();
        cookies.sort();
        cookies
    }

    /// The refresh token in the browser's cookie store: the cookie lives under
    /// `/api/login/refresh` and `/api/logout`, so the browser goes to `GET /api/logout` (a 404
    /// that changes nothing) to see it. Leaves the page.
    async fn refresh_cookie(&self, api: SocketAddr) -> Option<String> {
        self.goto(&format!("http://127.0.0.1:{}/api/logout", api.port()))
            .await;
        self.cookie(REFRESH_COOKIE).await
    }

    /// Opens the page at `/` and records its answers from then on.
    async fn open_page(&self, api: SocketAddr) {
        self.goto(&format!("http://127.0.0.1:{}/", api.port()))
            .await;
        self.eval(RECORD_ANSWERS).await;
    }

    /// The status and text of the document a navigation (a form's POST) ended on.
    async fn document_answer(&self) -> (u64, String) {
        let v = self
            .eval(
                "return [performance.getEntriesByType('navigation')[0].responseStatus, \
                 document.body.innerText];",
            )
            .await;
        (v[0].as_u64().unwrap(), v[1].as_str().unwrap().to_owned())
    }

    /// Submits the form of the test's site at `site_origin` that posts to `target` (a URL of
    /// the API); gives the status and text of the answer the browser shows.
    async fn post_form(&self, site_origin: &str, target: &str) -> (u64, String) {
        self.goto(&format!("{site_origin}/post_form.html?action={target}"))
            .await;
        self.click("submit").await;
        let deadline = Instant::now() + STEP_TIMEOUT;
        while self.client.current_url().await.unwrap().as_str() != target {
            assert!(Instant::now() < deadline, "the form was not submitted");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.document_answer().await
    }
}

/// Polls until `addr` refuses `access` as revoked; gives how long that took.
#[cfg(feature = "redis")]
async fn refused_within(addr: SocketAddr, access: &str, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let reply = Req::get("/api/v3/process").bearer(access).send(addr).await;
        if reply.status == 401 {
            reply.assert_invalid_token("token revoked");
            return start.elapsed();
        }
        assert_eq!(reply.status, 200);
        assert!(start.elapsed() < within, "still accepted after {within:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[cfg(feature = "redis")]
#[path = "redis_support/mod.rs"]
mod redis_support;

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_logs_in_refreshes_through_the_cookie_and_logs_out() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let started = Instant::now();
    let site = spawn_other_site().await;
    let prefix = redis_support::unique_prefix();
    let vars = [
        ("CORE_API_AUTH_SESSIONS", redis_support::SHARED),
        ("CORE_API_AUTH_REDIS_PREFIX", prefix.as_str()),
        ("CORE_API_AUTH_REFRESH_ROTATION", "true"),
        ("CORE_API_AUTH_COOKIES", "true"),
    ];
    // Two instances of one fleet on Redis: the browser uses the first.
    let api = spawn_example(&vars).await;
    let other = spawn_example(&vars).await;

    // Log in: the access token in the answer, the refresh token in an HttpOnly cookie.
    browser.open_page(api).await;
    assert_eq!(browser.eval("return document.cookie;").await, "");
    browser.submit_login().await;
    let mut seen = browser.expect_status(0, &["login 200"]).await;
    let first_access = browser.last_access_token().await;
    browser.click("process").await;
    browser.expect_status(seen, &["process 200"]).await;
    // The script sees the CSRF cookie and nothing else; under `/` the browser holds nothing
    // else either (the refresh cookie is scoped to the refresh and logout paths).
    let script_cookies = browser.eval("return document.cookie;").await;
    let csrf = browser.cookie(CSRF_COOKIE).await.expect("CSRF cookie");
    assert_eq!(script_cookies, format!("{CSRF_COOKIE}={csrf}"));
    assert_eq!(browser.cookie_names().await, [CSRF_COOKIE]);
    let first_refresh = browser.refresh_cookie(api).await.expect("refresh cookie");
    assert!(!script_cookies.as_str().unwrap().contains(&first_refresh));
    assert_eq!(
        browser.cookies_stored().await,
        [
            "__Host-csrf_token path=/ secure samesite=Strict",
            "__Secure-refresh_token path=/api/logout httponly secure samesite=Strict",
        ]
    );

    // A reloaded page has no token in memory: it resumes through the refresh cookie, which
    // rotates. The spent refresh token, presented again (as a thief who copied the cookies
    // would), is refused and ends the session: its access token is revoked, and the page's
    // next resume is refused and clears the cookies.
    browser.open_page(api).await;
    browser.expect_status(0, &["resume 200"]).await;
    let second_refresh = browser.refresh_cookie(api).await.expect("refresh cookie");
    assert_ne!(second_refresh, first_refresh);
    // Sent as a browser without Fetch Metadata would: both cookies and the CSRF header.
    let replay = Req::get("/api/login/refresh")
        .header(
            "Cookie",
            format!("{REFRESH_COOKIE}={first_refresh}; {CSRF_COOKIE}={csrf}"),
        )
        .header("X-CSRF-Token", &csrf)
        .send(api)
        .await;
    replay.assert_unauthorized(true);
    refused_within(api, &first_access, Duration::from_secs(1)).await;
    browser.open_page(api).await;
    browser.expect_status(0, &["resume 401"]).await;
    assert_eq!(browser.eval("return document.cookie;").await, "");
    assert_eq!(browser.refresh_cookie(api).await, None);

    // A new session.
    browser.open_page(api).await;
    browser.submit_login().await;
    browser.expect_status(0, &["login 200"]).await;

    // A form on another origin posts to the logout. Same site (127.0.0.1, another port): the
    // browser sends the cookies (SameSite=Strict allows it) and the CSRF check refuses
    // (`Sec-Fetch-Site: same-site` from an origin not allowed). Another site (localhost): the
    // browser sends no cookie at all, so the logout has no token to end (with the cookie the
    // CSRF check would have answered 403).
    let logout_url = format!("http://127.0.0.1:{}/api/logout", api.port());
    let same_site = format!("http://127.0.0.1:{}", site.port());
    // Cookies ignore ports: the page of the same host reads the CSRF cookie. The double submit
    // alone would not stop it; the Fetch Metadata check does.
    browser.goto(&format!("{same_site}/post_form.html")).await;
    let csrf = browser.cookie(CSRF_COOKIE).await.expect("CSRF cookie");
    assert_eq!(
        browser.eval("return document.cookie;").await,
        format!("{CSRF_COOKIE}={csrf}")
    );
    let (status, text) = browser.post_form(&same_site, &logout_url).await;
    assert_eq!((status, text.as_str()), (403, CSRF_FAILED));
    let cross_site = format!("http://localhost:{}", site.port());
    let (status, text) = browser.post_form(&cross_site, &logout_url).await;
    assert_eq!((status, text.as_str()), (401, INVALID_TOKEN));
    // The session is alive: the page resumes it, and refreshes.
    browser.open_page(api).await;
    seen = browser.expect_status(0, &["resume 200"]).await;
    browser.click("refresh").await;
    seen = browser.expect_status(seen, &["refresh 200"]).await;
    let access = browser.last_access_token().await;
    browser.click("process").await;
    seen = browser.expect_status(seen, &["process 200"]).await;
    // The other instance of the fleet accepts the access token.
    let reply = Req::get("/api/v3/process")
        .bearer(&access)
        .send(other)
        .await;
    assert_eq!((reply.status, reply.text()), (200, "[]\n"));

    // Log out: the other instance refuses the access token within a second, the browser holds
    // no cookie any more, and the page's next call has no token.
    browser.click("logout").await;
    seen = browser.expect_status(seen, &["logout 204"]).await;
    let took = refused_within(other, &access, Duration::from_secs(1)).await;
    browser.click("process").await;
    browser.expect_status(seen, &["process 401"]).await;
    // The token the page dropped, presented from the page, is refused as revoked.
    let revoked = browser
        .eval(&format!(
            "return fetch('/api/v3/process', {{ headers: {{ Authorization: 'Bearer {access}' }} }})
                .then(r => r.text().then(t => [r.status, r.headers.get('WWW-Authenticate'), t]));"
        ))
        .await;
    assert_eq!(
        revoked,
        serde_json::json!([
            401,
            "Bearer error=\"invalid_token\", error_description=\"token revoked\"",
            INVALID_TOKEN
        ])
    );
    assert_eq!(browser.eval("return document.cookie;").await, "");
    assert_eq!(browser.cookie_names().await, Vec::<String>::new());
    assert_eq!(browser.refresh_cookie(api).await, None);
    println!(
        "browser mode: the other instance refused the logged-out token after {took:?}; \
         test {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_access_cookie_top_level_requests_are_authenticated_and_unsafe_ones_checked() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let site = spawn_other_site().await;
    let api = spawn_example(&[
        ("CORE_API_AUTH_SESSIONS", "memory"),
        ("CORE_API_AUTH_COOKIES", "access"),
    ])
    .await;
    let api_origin = format!("http://127.0.0.1:{}", api.port());
    let process_url = format!("{api_origin}/api/v3/process");

    browser.open_page(api).await;
    browser.submit_login().await;
    browser.expect_status(0, &["login 200"]).await;
    // Both cookies under `/`; the script sees the CSRF cookie only.
    let csrf = browser.cookie(CSRF_COOKIE).await.expect("CSRF cookie");
    assert_eq!(
        browser.eval("return document.cookie;").await,
        format!("{CSRF_COOKIE}={csrf}")
    );
    assert_eq!(
        browser.cookies_stored().await,
        [
            "__Host-access_token path=/ httponly secure samesite=Strict",
            "__Host-csrf_token path=/ secure samesite=Strict",
        ]
    );
    // A link followed (a top-level GET, no Authorization header): the access cookie
    // authenticates it.
    browser.goto(&process_url).await;
    assert_eq!(browser.document_answer().await, (200, "[]\n".to_owned()));
    // An unsafe method from a same-site page with the access cookie: the CSRF check refuses it
    // before the route is looked at.
    let same_site = format!("http://127.0.0.1:{}", site.port());
    let (status, text) = browser.post_form(&same_site, &process_url).await;
    assert_eq!((status, text.as_str()), (403, CSRF_FAILED));

    // Back on the page (which resumes the session), log out: the access cookie is cleared
    // with the others.
    browser.open_page(api).await;
    let seen = browser.expect_status(0, &["resume 200"]).await;
    browser.click("logout").await;
    browser.expect_status(seen, &["logout 204"]).await;
    assert_eq!(browser.cookies_stored().await, Vec::<String>::new());
    browser.goto(&process_url).await;
    assert_eq!(
        browser.document_answer().await,
        (401, INVALID_TOKEN.to_owned())
    );
}
