use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::header::{COOKIE, RETRY_AFTER, SET_COOKIE, VARY};
use http::{HeaderValue, Request, Response, StatusCode};
use tower_service::Service;
use tracing::Instrument as _;

use crate::integration::{record_answer, request_span};
use crate::session::{Disposition, Finished, Replacement, SessionManager};

/// The service [`SessionLayer`](super::SessionLayer) wraps around an inner service.
///
/// For each request it puts a lazy [`Session`](crate::Session) into the request's
/// extensions, calls the inner service, then applies the engine's
/// [`Outcome`](crate::Outcome): `Set-Cookie`, `Vary: Cookie`, or an empty answer when the
/// store failed (`500`, or `503` with `Retry-After`, as SESSION_STORE_FAILURE says; `409`
/// when the session ended while the request ran; see
/// [`Error::status_code`](crate::Error::status_code)).
#[derive(Debug, Clone)]
pub struct SessionService<S> {
    inner: S,
    manager: SessionManager,
}

impl<S> SessionService<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, manager: SessionManager) -> Self {
        Self { inner, manager }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, unwrapped.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SessionService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    // Boxed: the future awaits the store after the inner service, so it cannot be named
    // without a hand-written state machine; one allocation per request is the price.
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let session = self.manager.session(
            request
                .headers()
                .get_all(COOKIE)
                .iter()
                .map(HeaderValue::as_bytes),
        );
        request.extensions_mut().insert(session.clone());
        let span = request_span(request.method().as_str(), request.uri().path());
        // The clone that was polled ready is the one that serves this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let answer = async move {
            let mut response = inner.call(request).await?;
            let status = response.status().as_u16();
            let ended = session.finish(status).await;
            let outcome = match session.answer(ended) {
                Finished::Respond(outcome) => outcome,
                Finished::Replace(replacement) => return Ok(empty(replacement)),
            };
            let cookie = match outcome.set_cookie().map(HeaderValue::try_from) {
                Some(Ok(value)) => Some(value),
                Some(Err(_)) => {
                    return Ok(empty(Replacement::new(Finished::cookie_unsendable())));
                }
                None => None,
            };
            let headers = response.headers_mut();
            if outcome.vary_cookie() {
                headers.append(VARY, HeaderValue::from_static("Cookie"));
            }
            if let Some(cookie) = cookie {
                headers.append(SET_COOKIE, cookie);
            }
            if let Some(disposition) = record_answer(status, outcome.disposition()) {
                response.extensions_mut().insert(disposition);
            }
            Ok(response)
        };
        Box::pin(answer.instrument(span))
    }
}

/// The engine's empty answer in the place of the handler's: a `500` whose cause was
/// logged, never shown to the client, a `503` with `Retry-After`, or a `409` for changes
/// that were not kept. The session was used, so the answer still varies with the cookie.
fn empty<B: Default>(replacement: Replacement) -> Response<B> {
    let status = replacement.status();
    let mut response = Response::new(B::default());
    if let Some(disposition) = record_answer(status, Disposition::Failed) {
        response.extensions_mut().insert(disposition);
    }
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(VARY, HeaderValue::from_static("Cookie"));
    if let Some(seconds) = replacement.retry_after() {
        headers.insert(RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}
