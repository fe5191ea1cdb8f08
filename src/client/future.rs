//! [`ResponseFuture`]: the inner client's future on the fast path, a boxed one when the request
//! has to wait for a refresh or be sent again.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::{Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tower_service::Service;

use super::error::RequestError;
use super::layer::retry;
use super::source::{TokenSource, Tokens};

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// What a sent request needs should the server answer 401.
struct After<S, B> {
    source: TokenSource,
    tokens: Arc<Tokens>,
    /// The service and a copy of the request, when its body replays.
    again: Option<(S, Request<B>)>,
}

pin_project! {
    /// The response future of [`LoginClient`](super::LoginClient).
    pub struct ResponseFuture<S, B>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        state: State<S, B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, B>
    where
        S: Service<Request<B>>,
    {
        Sent {
            #[pin]
            fut: S::Future,
            after: Option<After<S, B>>,
        },
        Boxed {
            fut: BoxFuture<Result<S::Response, RequestError<S::Error>>>,
        },
    }
}

impl<S, B> ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    pub(crate) fn passthrough(fut: S::Future) -> Self {
        ResponseFuture {
            state: State::Sent { fut, after: None },
        }
    }

    pub(crate) fn sent(
        fut: S::Future,
        source: TokenSource,
        tokens: Arc<Tokens>,
        again: Option<(S, Request<B>)>,
    ) -> Self {
        ResponseFuture {
            state: State::Sent {
                fut,
                after: Some(After {
                    source,
                    tokens,
                    again,
                }),
            },
        }
    }

    pub(crate) fn boxed(fut: BoxFuture<Result<S::Response, RequestError<S::Error>>>) -> Self {
        ResponseFuture {
            state: State::Boxed { fut },
        }
    }
}

impl<S, B, RB> Future for ResponseFuture<S, B>
where
    S: Service<Request<B>, Response = Response<RB>> + Send + 'static,
    S::Future: Send,
    S::Error: Send + 'static,
    B: Send + 'static,
    RB: Send + 'static,
{
    type Output = Result<Response<RB>, RequestError<S::Error>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let mut this = self.as_mut().project();
            match this.state.as_mut().project() {
                StateProj::Sent { fut, after } => {
                    let res = ready!(fut.poll(cx)).map_err(RequestError::Inner)?;
                    if res.status() != StatusCode::UNAUTHORIZED {
                        return Poll::Ready(Ok(res));
                    }
                    let Some(after) = after.take() else {
                        return Poll::Ready(Ok(res));
                    };
                    after.source.reject_tokens(&after.tokens);
                    let Some((svc, req)) = after.again else {
                        return Poll::Ready(Ok(res));
                    };
                    let fut = Box::pin(retry(after.source, svc, req));
                    this.state.set(State::Boxed { fut });
                }
                StateProj::Boxed { fut } => return fut.as_mut().poll(cx),
            }
        }
    }
}

impl<S, B> fmt::Debug for ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
