use axum_core::extract::FromRequestParts;
use axum_core::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;

use crate::error::Error;
use crate::session::Session;

/// Why the [`Session`] extractor failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionRejection {
    /// The route is not behind a [`SessionLayer`](super::SessionLayer).
    #[error("no session: the route is not behind a SessionLayer")]
    MissingLayer,
}

impl IntoResponse for SessionRejection {
    fn into_response(self) -> Response {
        tracing::error!("{self}");
        StatusCode::INTERNAL_SERVER_ERROR.into_response()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = SessionRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Session>()
            .cloned()
            .ok_or(SessionRejection::MissingLayer)
    }
}

/// A session error answers with an empty body and the status the engine gives it
/// ([`Error::status_code`]): `500` for a store that failed (logged where it happened) or
/// a mistake of the application's (logged here), `409` for a conflict.
impl IntoResponse for Error {
    fn into_response(self) -> Response {
        StatusCode::from_u16(self.answered())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            .into_response()
    }
}
