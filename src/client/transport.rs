//! The HTTP client the token source uses for its own four requests (discovery, login, refresh,
//! logout: `GET /api`, `POST /api/login`, `GET /api/login/refresh`, `POST /api/logout` with
//! Core's paths), type-erased so that a [`TokenSource`](super::TokenSource) is one type whatever
//! client it was given.

use std::future::{Future, poll_fn};
use std::pin::Pin;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Full, Limited};
use tower_service::Service;

use crate::error::BoxError;
type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A whole response of a token endpoint.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

pub(crate) trait Transport: Send + Sync + 'static {
    /// Sends `req` and reads at most `limit` bytes of the answer.
    fn send(&self, req: Request<Full<Bytes>>, limit: usize) -> BoxFuture<Result<Answer, BoxError>>;
}

/// Any cloneable tower HTTP client as a [`Transport`].
pub(crate) struct ServiceTransport<S>(pub(crate) S);

impl<S, RB> Transport for ServiceTransport<S>
where
    S: Service<Request<Full<Bytes>>, Response = Response<RB>> + Clone + Send + Sync + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    RB: Body + Send + 'static,
    RB::Data: Send,
    RB::Error: Into<BoxError>,
{
    fn send(&self, req: Request<Full<Bytes>>, limit: usize) -> BoxFuture<Result<Answer, BoxError>> {
        let mut svc = self.0.clone();
        Box::pin(async move {
            poll_fn(|cx| svc.poll_ready(cx)).await.map_err(Into::into)?;
            let res = svc.call(req).await.map_err(Into::into)?;
            let (parts, body) = res.into_parts();
            let body = Limited::new(body, limit).collect().await?.to_bytes();
            Ok(Answer {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        })
    }
}

/// hyper-util's pooled HTTP/1 client over plain TCP: the default transport.
pub(crate) fn default_transport() -> ServiceTransport<
    hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        Full<Bytes>,
    >,
> {
    ServiceTransport(
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http(),
    )
}
