//! Real headless Chromium against the example server, driven over WebDriver (chromedriver, with
//! the `fantoccini` client): the page the example serves at `/`, and a page on another origin that
//! uses the API with Bearer tokens through CORS.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`/usr/bin/chromium` and `/usr/bin/chromedriver`;
//! `TJL_CHROMIUM` and `TJL_CHROMEDRIVER` name others). Without them the browser tests pass with a
//! message saying they skipped, unless `TJL_REQUIRE_BROWSER` is set (CI sets it): then they fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

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
    if chromium.is_file() && driver.is_file() {
        return Some((chromium, driver));
    }
    let missing = format!(
        "{} or {} is missing (apt-get install chromium chromium-driver)",
        chromium.display(),
        driver.display()
    );
    assert!(
        std::env::var_os("TJL_REQUIRE_BROWSER").is_none(),
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

/// The test's own site, on another port than the example server: the page that uses the API
/// through CORS.
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
    let started = Instant::now();
    let site = spawn_other_site().await;
    // `localhost` and `127.0.0.1` are different sites: the page is cross-site to the API.
    let page_origin = format!("http://localhost:{}", site.port());
    let api = spawn_example(&[
        ("CORE_API_AUTH_SESSIONS", "memory"),
        ("CORE_API_AUTH_CORS_ORIGINS", &page_origin),
    ])
    .await;
    let api_origin = format!("http://127.0.0.1:{}", api.port());

    browser
        .goto(&format!("{page_origin}/cross_origin.html?api={api_origin}"))
        .await;
    browser.submit_login().await;
    browser
        .expect_status(
            0,
            &[
                "login 200",
                "tokens access_token,refresh_token",
                "process 200",
                "processes []",
                "refresh 200",
                "process 200",
            ],
        )
        .await;

    // Without credentials the browser stored nothing for the API's origin: no cookie under `/`
    // nor under `/api/logout` (a GET there is a harmless 404).
    browser.goto(&format!("{api_origin}/api/logout")).await;
    assert_eq!(browser.cookie_names().await, Vec::<String>::new());

    // The same page from an origin the API does not list: the browser refuses it the answer.
    browser
        .goto(&format!(
            "http://127.0.0.1:{}/cross_origin.html?api={api_origin}",
            site.port()
        ))
        .await;
    browser.submit_login().await;
    browser
        .expect_status(0, &["login failed: TypeError: Failed to fetch"])
        .await;
    println!("cross-origin page: {:?}", started.elapsed());
}
