//! [`KitBody`]: the response body of the assembled service — the app's own, or one the crate
//! wrote (a login answer, a refusal).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::response::ResponseBody;

use crate::error::BoxError;

pin_project! {
    /// The body of a [`LoginKitService`](super::LoginKitService) response: the wrapped app's
    /// body, or one the crate wrote. `Default` is the empty body (a CORS preflight's answer).
    pub struct KitBody<B> {
        #[pin]
        inner: Inner<B>,
    }
}

pin_project! {
    #[project = InnerProj]
    enum Inner<B> {
        App { #[pin] body: B },
        Own { #[pin] body: ResponseBody },
    }
}

impl<B> KitBody<B> {
    pub(crate) fn app(body: B) -> Self {
        KitBody {
            inner: Inner::App { body },
        }
    }

    pub(crate) fn own(body: ResponseBody) -> Self {
        KitBody {
            inner: Inner::Own { body },
        }
    }
}

impl<B> Default for KitBody<B> {
    fn default() -> Self {
        KitBody::own(ResponseBody::default())
    }
}

impl<B> std::fmt::Debug for KitBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner {
            Inner::App { .. } => f.write_str("KitBody::App"),
            Inner::Own { body } => f.debug_tuple("KitBody::Own").field(body).finish(),
        }
    }
}

impl<B> Body for KitBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.project().inner.project() {
            InnerProj::App { body } => body
                .poll_frame(cx)
                .map(|frame| frame.map(|r| r.map_err(Into::into))),
            InnerProj::Own { body } => body
                .poll_frame(cx)
                .map(|frame| frame.map(|r| r.map_err(|never| match never {}))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::App { body } => body.is_end_stream(),
            Inner::Own { body } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::App { body } => body.size_hint(),
            Inner::Own { body } => body.size_hint(),
        }
    }
}
