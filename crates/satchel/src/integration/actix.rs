//! actix-web 4: [`SessionMiddleware`], the [`Session`] extractor and [`SessionExt`].
//!
//! The middleware builds a lazy [`Session`] from the request's cookies, runs the handler,
//! then applies the engine's [`Outcome`](crate::Outcome) exactly as the tower layer does:
//! both integrations only carry the engine's decision, so they behave the same.
//!
//! # Examples
//!
//! ```no_run
//! use actix_web::{App, HttpServer, web};
//! use satchel::{MemoryStore, Session, SessionConfig};
//! use satchel::integration::actix::SessionMiddleware;
//!
//! async fn visits(session: Session) -> Result<String, satchel::Error> {
//!     let n: u64 = session.get("visits").await?.unwrap_or(0) + 1;
//!     session.insert("visits", n).await?;
//!     Ok(format!("visit number {n}"))
//! }
//!
//! #[actix_web::main]
//! async fn main() -> std::io::Result<()> {
//!     let middleware = SessionMiddleware::new(MemoryStore::default(), SessionConfig::default());
//!     HttpServer::new(move || {
//!         App::new()
//!             .wrap(middleware.clone())
//!             .route("/", web::get().to(visits))
//!     })
//!     .bind(("127.0.0.1", 8080))?
//!     .run()
//!     .await
//! }
//! ```

use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::rc::Rc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::StatusCode;
use actix_web::http::header::{COOKIE, HeaderValue, RETRY_AFTER, SET_COOKIE, VARY};
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError};
use tracing::Instrument as _;

use crate::error::Error;
use crate::integration::{record_answer, request_span};
use crate::session::{Disposition, Finished, Replacement, Session, SessionManager};

/// The actix-web middleware that gives every request a [`Session`].
///
/// Built once and cloned into each worker's `App` (`App::new().wrap(middleware.clone())`).
#[derive(Debug, Clone)]
pub struct SessionMiddleware {
    manager: SessionManager,
}

entry_point!(SessionMiddleware, "middleware");

impl<S, B> Transform<S, ServiceRequest> for SessionMiddleware
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = SessionMiddlewareService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(SessionMiddlewareService {
            service: Rc::new(service),
            manager: self.manager.clone(),
        }))
    }
}

/// The service [`SessionMiddleware`] wraps around the application.
#[doc(hidden)]
#[derive(Debug)]
pub struct SessionMiddlewareService<S> {
    service: Rc<S>,
    manager: SessionManager,
}

impl<S, B> Service<ServiceRequest> for SessionMiddlewareService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>>>>;

    forward_ready!(service);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        let session = self
            .manager
            .session(request.headers().get_all(COOKIE).map(HeaderValue::as_bytes));
        request.extensions_mut().insert(session.clone());
        let span = request_span(request.method().as_str(), request.path());
        let service = Rc::clone(&self.service);
        let answer = async move {
            let mut response = service.call(request).await?;
            let status = response.status().as_u16();
            let ended = session.finish(status).await;
            let outcome = match session.answer(ended) {
                Finished::Respond(outcome) => outcome,
                Finished::Replace(replacement) => return Ok(empty(response, replacement)),
            };
            let cookie = match outcome.set_cookie().map(HeaderValue::from_str) {
                Some(Ok(value)) => Some(value),
                Some(Err(_)) => {
                    let replacement = Replacement::new(Finished::cookie_unsendable());
                    return Ok(empty(response, replacement));
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
                response.response_mut().extensions_mut().insert(disposition);
            }
            Ok(response.map_into_left_body())
        };
        Box::pin(answer.instrument(span))
    }
}

/// The status the engine chose, as actix-web's type.
fn status_of(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// The engine's empty answer in the place of the handler's: a `500` whose cause was
/// logged, never shown to the client, a `503` with `Retry-After`, or a `409` for changes
/// that were not kept. The session was used, so the answer still varies with the cookie.
fn empty<B>(
    response: ServiceResponse<B>,
    replacement: Replacement,
) -> ServiceResponse<EitherBody<B>> {
    let status = replacement.status();
    let (request, _) = response.into_parts();
    let mut empty = HttpResponse::new(status_of(status));
    if let Some(disposition) = record_answer(status, Disposition::Failed) {
        empty.extensions_mut().insert(disposition);
    }
    let headers = empty.headers_mut();
    headers.insert(VARY, HeaderValue::from_static("Cookie"));
    if let Some(seconds) = replacement.retry_after() {
        headers.insert(RETRY_AFTER, HeaderValue::from(seconds));
    }
    ServiceResponse::new(request, empty).map_into_right_body()
}

/// The route is not wrapped in a [`SessionMiddleware`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no session: the app is not wrapped in a SessionMiddleware")]
pub struct MissingSessionMiddleware;

impl ResponseError for MissingSessionMiddleware {
    fn status_code(&self) -> StatusCode {
        StatusCode::INTERNAL_SERVER_ERROR
    }

    fn error_response(&self) -> HttpResponse {
        tracing::error!("{self}");
        HttpResponse::new(self.status_code())
    }
}

impl FromRequest for Session {
    type Error = MissingSessionMiddleware;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        ready(request.get_session())
    }
}

/// A session error answers with an empty body and the status the engine gives it
/// ([`Error::status_code`]): `500` for a store that failed (logged where it happened) or
/// a mistake of the application's (logged here), `409` for a conflict.
impl ResponseError for Error {
    fn status_code(&self) -> StatusCode {
        status_of(Error::status_code(self))
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::new(status_of(self.answered()))
    }
}

/// Reaches the request's [`Session`] from an [`HttpRequest`] or a [`ServiceRequest`]
/// (for other middleware and guards).
pub trait SessionExt {
    /// The request's session.
    ///
    /// # Errors
    ///
    /// [`MissingSessionMiddleware`] when the app is not wrapped in a [`SessionMiddleware`].
    fn get_session(&self) -> Result<Session, MissingSessionMiddleware>;
}

impl SessionExt for HttpRequest {
    fn get_session(&self) -> Result<Session, MissingSessionMiddleware> {
        self.extensions()
            .get::<Session>()
            .cloned()
            .ok_or(MissingSessionMiddleware)
    }
}

impl SessionExt for ServiceRequest {
    fn get_session(&self) -> Result<Session, MissingSessionMiddleware> {
        self.extensions()
            .get::<Session>()
            .cloned()
            .ok_or(MissingSessionMiddleware)
    }
}
