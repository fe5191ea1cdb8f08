//! The layer's response future: no boxing, one state per outcome.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::{Method, Response, StatusCode};
use http_body_util::Either;
use pin_project_lite::pin_project;

use crate::response::{ResponseBody, error_response};

pin_project! {
    /// Response future of [`JwtAuth`](super::JwtAuth).
    pub struct ResponseFuture<F> {
        #[pin]
        state: State<F>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Authorized { #[pin] future: F },
        Rejected { response: Option<Response<ResponseBody>> },
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn authorized(future: F) -> Self {
        ResponseFuture {
            state: State::Authorized { future },
        }
    }

    pub(super) fn rejected(response: Response<ResponseBody>) -> Self {
        ResponseFuture {
            state: State::Rejected {
                response: Some(response),
            },
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<Either<B, ResponseBody>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Authorized { future } => {
                let response = ready!(future.poll(cx))?;
                Poll::Ready(Ok(response.map(Either::Left)))
            }
            StateProj::Rejected { response } => {
                // Polled again after completion: a contract violation by the caller. Answer a
                // 500 rather than panic.
                let response = response.take().unwrap_or_else(|| {
                    error_response(
                        &Method::GET,
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "Internal Server Error",
                    )
                });
                Poll::Ready(Ok(response.map(Either::Right)))
            }
        }
    }
}
