//! [`LoginClientLayer`] / [`LoginClient`]: attach the access token to every request of a tower
//! HTTP client, refresh and retry once on a 401.

use std::future::poll_fn;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use tower_layer::Layer;
use tower_service::Service;

use super::error::RequestError;
use super::future::ResponseFuture;
use super::source::{TokenSource, Tokens};

/// Request bodies the layer can send a second time.
///
/// After a 401 the layer refreshes the token and sends the request again — only when its body
/// can be replayed: [`try_clone_body`](Self::try_clone_body) returns a copy. Bodies held in
/// memory ([`Full`](http_body_util::Full), [`Empty`](http_body_util::Empty), `String`,
/// `Vec<u8>`, [`Bytes`], `()`) replay; streaming bodies (hyper's `Incoming`, boxed bodies)
/// return `None`, and a 401 to such a request is handed back as it is (the token is still
/// marked refused, so the next request refreshes first). Implement it for your own body type
/// to opt in or out.
pub trait ReplayBody: Sized {
    /// A copy of this body to send again, or `None` when it cannot be replayed.
    fn try_clone_body(&self) -> Option<Self>;
}

impl<D: Clone> ReplayBody for http_body_util::Full<D> {
    fn try_clone_body(&self) -> Option<Self> {
        Some(self.clone())
    }
}
impl<D> ReplayBody for http_body_util::Empty<D> {
    fn try_clone_body(&self) -> Option<Self> {
        Some(http_body_util::Empty::new())
    }
}
impl ReplayBody for String {
    fn try_clone_body(&self) -> Option<Self> {
        Some(self.clone())
    }
}
impl ReplayBody for Vec<u8> {
    fn try_clone_body(&self) -> Option<Self> {
        Some(self.clone())
    }
}
impl ReplayBody for Bytes {
    fn try_clone_body(&self) -> Option<Self> {
        Some(self.clone())
    }
}
impl ReplayBody for () {
    fn try_clone_body(&self) -> Option<Self> {
        Some(())
    }
}
impl ReplayBody for hyper::body::Incoming {
    fn try_clone_body(&self) -> Option<Self> {
        None
    }
}
impl<D, E> ReplayBody for http_body_util::combinators::BoxBody<D, E> {
    fn try_clone_body(&self) -> Option<Self> {
        None
    }
}
impl<D, E> ReplayBody for http_body_util::combinators::UnsyncBoxBody<D, E> {
    fn try_clone_body(&self) -> Option<Self> {
        None
    }
}

/// A copy of `req` to send again, when its body replays. Extensions are copied too.
fn replay<B: ReplayBody>(req: &Request<B>) -> Option<Request<B>> {
    let body = req.body().try_clone_body()?;
    let mut copy = Request::new(body);
    *copy.method_mut() = req.method().clone();
    *copy.uri_mut() = req.uri().clone();
    *copy.version_mut() = req.version();
    *copy.headers_mut() = req.headers().clone();
    *copy.extensions_mut() = req.extensions().clone();
    Some(copy)
}

/// Wraps a tower HTTP client in [`LoginClient`], which logs in through a [`TokenSource`] and
/// attaches `Authorization: Bearer <access token>` to every request to the source's server.
#[derive(Debug, Clone)]
pub struct LoginClientLayer {
    source: TokenSource,
}

impl LoginClientLayer {
    /// The layer for `source` (also [`TokenSource::layer`]).
    pub fn new(source: TokenSource) -> Self {
        LoginClientLayer { source }
    }
}

impl<S> Layer<S> for LoginClientLayer {
    type Service = LoginClient<S>;

    fn layer(&self, inner: S) -> LoginClient<S> {
        LoginClient {
            inner,
            source: self.source.clone(),
        }
    }
}

/// A tower HTTP client that is always logged in ([`LoginClientLayer`]).
///
/// For each request to the [`TokenSource`]'s server (same scheme and host:port) that carries no
/// `Authorization` header of its own:
///
/// 1. the current access token is attached when fresh (no lock, no I/O); otherwise the request
///    waits for the one refresh (or login) in flight, see [`TokenSource`];
/// 2. when the server answers `401` and the body [replays](ReplayBody), the token is marked
///    refused, refreshed once (single flight again) and the request sent once more; the second
///    answer is returned whatever it is. A request whose body does not replay gets its 401 back.
///
/// Requests to other hosts, and requests that already carry `Authorization`, pass through
/// untouched: the token is never sent anywhere else.
///
/// The service is cloned per call and the readied one moves into the response future
/// (tower's ready-service discipline), so `S` must be `Clone`.
#[derive(Debug, Clone)]
pub struct LoginClient<S> {
    inner: S,
    source: TokenSource,
}

impl<S> LoginClient<S> {
    /// The token source.
    pub fn source(&self) -> &TokenSource {
        &self.source
    }

    /// The wrapped client.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped client, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The wrapped client, unwrapped.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B, RB> Service<Request<B>> for LoginClient<S>
where
    S: Service<Request<B>, Response = Response<RB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: ReplayBody + Send + 'static,
    RB: Send + 'static,
{
    type Response = Response<RB>;
    type Error = RequestError<S::Error>;
    type Future = ResponseFuture<S, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(RequestError::Inner)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        if !self.source.applies_to(req.uri()) || req.headers().contains_key(header::AUTHORIZATION) {
            return ResponseFuture::passthrough(inner.call(req));
        }
        match self.source.current_fresh() {
            Some(tokens) => {
                req.headers_mut()
                    .insert(header::AUTHORIZATION, tokens.header.clone());
                let again = replay(&req);
                let fut = inner.call(req);
                ResponseFuture::sent(fut, self.source.clone(), tokens, again.map(|r| (inner, r)))
            }
            None => ResponseFuture::boxed(Box::pin(stale(self.source.clone(), inner, req))),
        }
    }
}

/// The slow path: wait for fresh tokens, then send (the service is ready already).
async fn stale<S, B, RB>(
    source: TokenSource,
    mut svc: S,
    mut req: Request<B>,
) -> Result<Response<RB>, RequestError<S::Error>>
where
    S: Service<Request<B>, Response = Response<RB>>,
    B: ReplayBody,
{
    let tokens = source.fresh().await.map_err(RequestError::Token)?;
    req.headers_mut()
        .insert(header::AUTHORIZATION, tokens.header.clone());
    let again = replay(&req);
    let res = svc.call(req).await.map_err(RequestError::Inner)?;
    if res.status() != StatusCode::UNAUTHORIZED {
        return Ok(res);
    }
    source.reject_tokens(&tokens);
    match again {
        Some(req) => retry(source, svc, req).await,
        None => Ok(res),
    }
}

/// After a 401: fresh tokens (the one refresh), ready the service again, send once more.
pub(crate) async fn retry<S, B, RB>(
    source: TokenSource,
    mut svc: S,
    mut req: Request<B>,
) -> Result<Response<RB>, RequestError<S::Error>>
where
    S: Service<Request<B>, Response = Response<RB>>,
{
    let tokens: Arc<Tokens> = source.fresh().await.map_err(RequestError::Token)?;
    req.headers_mut()
        .insert(header::AUTHORIZATION, tokens.header.clone());
    poll_fn(|cx| svc.poll_ready(cx))
        .await
        .map_err(RequestError::Inner)?;
    let res = svc.call(req).await.map_err(RequestError::Inner)?;
    if res.status() == StatusCode::UNAUTHORIZED {
        source.reject_tokens(&tokens);
    }
    Ok(res)
}
