//! The browser page of the example server: `GET /` and its script `GET /app.js`, plain HTML and
//! JavaScript embedded in the binary. The page logs in, keeps the access token in memory,
//! refreshes through the refresh cookie of browser mode and logs out.

use axum::response::IntoResponse;
use http::{HeaderValue, header};

const INDEX_HTML: &str = include_str!("index.html");
const APP_JS: &str = include_str!("app.js");

/// Scripts only from this origin (no inline script), requests only to it, nothing else.
const CSP: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; \
                   form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// `GET /`: the page.
pub async fn index() -> impl IntoResponse {
    static_file("text/html; charset=utf-8", INDEX_HTML)
}

/// `GET /app.js`: the page's script.
pub async fn app_js() -> impl IntoResponse {
    static_file("text/javascript; charset=utf-8", APP_JS)
}

fn static_file(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
}
