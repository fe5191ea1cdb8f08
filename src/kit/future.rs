//! The response futures of the assembled service: no boxing for the app's requests.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::{Method, Response, StatusCode};
use pin_project_lite::pin_project;

use super::body::KitBody;
use super::routes::OwnFuture;
use crate::response::{ResponseBody, error_response};

pin_project! {
    /// The future of the assembly's inner part: the app's future, one of the crate's own
    /// services, or an answer ready at once (a refusal).
    pub(crate) struct CoreFuture<F> {
        #[pin]
        state: State<F>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        App { #[pin] future: F },
        Own { future: OwnFuture },
        Ready { response: Option<Response<ResponseBody>> },
    }
}

impl<F> CoreFuture<F> {
    pub(crate) fn app(future: F) -> Self {
        CoreFuture {
            state: State::App { future },
        }
    }

    pub(crate) fn own(future: OwnFuture) -> Self {
        CoreFuture {
            state: State::Own { future },
        }
    }

    pub(crate) fn ready(response: Response<ResponseBody>) -> Self {
        CoreFuture {
            state: State::Ready {
                response: Some(response),
            },
        }
    }
}

impl<F, B, E> Future for CoreFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<KitBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::App { future } => {
                let response = ready!(future.poll(cx))?;
                Poll::Ready(Ok(response.map(KitBody::app)))
            }
            StateProj::Own { future } => {
                let response = ready!(future.as_mut().poll(cx));
                Poll::Ready(Ok(response.map(KitBody::own)))
            }
            StateProj::Ready { response } => {
                // Polled again after completion: a contract violation by the caller. Answer a
                // 500 rather than panic.
                let response = response.take().unwrap_or_else(|| {
                    error_response(
                        &Method::GET,
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "Internal Server Error",
                    )
                });
                Poll::Ready(Ok(response.map(KitBody::own)))
            }
        }
    }
}

pin_project! {
    /// Response future of [`LoginKitService`](super::LoginKitService).
    pub struct ResponseFuture<F> {
        #[pin]
        state: Outer<F>,
    }
}

pin_project! {
    #[project = OuterProj]
    enum Outer<F> {
        Plain { #[pin] future: CoreFuture<F> },
        Cors {
            #[pin] future: tower_http::cors::ResponseFuture<CoreFuture<F>>,
            preflight: bool,
        },
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn plain(future: CoreFuture<F>) -> Self {
        ResponseFuture {
            state: Outer::Plain { future },
        }
    }

    pub(crate) fn cors(
        future: tower_http::cors::ResponseFuture<CoreFuture<F>>,
        preflight: bool,
    ) -> Self {
        ResponseFuture {
            state: Outer::Cors { future, preflight },
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<KitBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            OuterProj::Plain { future } => future.poll(cx),
            OuterProj::Cors { future, preflight } => {
                let mut response = ready!(future.poll(cx))?;
                // tower-http answers a preflight itself with 200; Core answers 204 (no body).
                if *preflight && response.status() == StatusCode::OK {
                    *response.status_mut() = StatusCode::NO_CONTENT;
                }
                Poll::Ready(Ok(response))
            }
        }
    }
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
