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

/// A session error answers with an empty `500` (the cause was logged where it happened);
/// [`Error::Disabled`] too, since it is a configuration mistake, not the client's.
impl IntoResponse for Error {
    fn into_response(self) -> Response {
        if !matches!(self, Error::Unavailable) {
            tracing::error!(error = %self, "session operation failed");
        }
        StatusCode::INTERNAL_SERVER_ERROR.into_response()
    }
}
