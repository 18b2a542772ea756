//! Framework integrations: each only applies the engine's [`Outcome`](crate::Outcome).
//!
//! Both put the request under a `satchel.request` span at `DEBUG` level (fields `method`,
//! `path`, and once answered `status` and `session`, the
//! [`Disposition`](crate::Disposition)), and, when the session was written, destroyed or
//! failed, the disposition in the response's extensions, for access logs and other
//! middleware. A response without one left its session untouched, or only read it: then
//! it carries `Vary: Cookie` ([`Disposition::of_response`](crate::Disposition::of_response)
//! tells). (An extension costs allocations, which the most common requests skip.) Store
//! calls made for the request run in `satchel.store` spans inside it
//! ([`observability`](crate::observability)).

/// The span a request's handling runs in (see the [module documentation](self)).
#[cfg(any(feature = "axum", feature = "actix"))]
pub(crate) fn request_span(method: &str, path: &str) -> tracing::Span {
    tracing::debug_span!(
        "satchel.request",
        method,
        path,
        status = tracing::field::Empty,
        session = tracing::field::Empty,
    )
}

/// Records the answer on the request's span: the status sent, and what became of the
/// session; the disposition to put in the response's extensions, if any.
#[cfg(any(feature = "axum", feature = "actix"))]
pub(crate) fn record_answer(
    status: u16,
    disposition: crate::Disposition,
) -> Option<crate::Disposition> {
    let span = tracing::Span::current();
    if !span.is_disabled() {
        span.record("status", status);
        span.record("session", disposition.as_str());
    }
    let noted = !matches!(
        disposition,
        crate::Disposition::Untouched | crate::Disposition::Read
    );
    noted.then_some(disposition)
}

/// The constructors of an integration's entry type (`SessionLayer`, `SessionMiddleware`),
/// written once: `new`, `try_new`, `from_config`, `manager` and `From<SessionManager>`.
/// The type must be a struct with one field, `manager: SessionManager`.
#[cfg(any(feature = "axum", feature = "actix"))]
macro_rules! entry_point {
    ($name:ident, $what:literal) => {
        impl $name {
            #[doc = concat!("A ", $what, " over `store` with `config`.")]
            ///
            /// # Panics
            ///
            #[doc = concat!("Panics when the configuration is invalid; [`", stringify!($name), "::try_new`]")]
            /// returns the error instead.
            #[must_use]
            pub fn new(
                store: impl $crate::store::SessionStore,
                config: $crate::config::SessionConfig,
            ) -> Self {
                match Self::try_new(store, config) {
                    Ok(entry) => entry,
                    Err(error) => panic!("invalid session configuration: {error}"),
                }
            }

            #[doc = concat!("A ", $what, " over `store` with `config`, or why the configuration is invalid.")]
            ///
            /// # Errors
            ///
            /// [`ConfigError`](crate::ConfigError) when the configuration contradicts
            /// itself.
            pub fn try_new(
                store: impl $crate::store::SessionStore,
                config: $crate::config::SessionConfig,
            ) -> Result<Self, $crate::error::ConfigError> {
                $crate::session::SessionManager::new(store, config).map(Self::from)
            }

            #[doc = concat!("A ", $what, " whose store is built from SESSION_TYPE and the store settings.")]
            ///
            /// # Errors
            ///
            /// [`ConfigError`](crate::ConfigError) when the configuration is invalid or the
            /// store cannot be opened.
            pub async fn from_config(
                config: $crate::config::SessionConfig,
            ) -> Result<Self, $crate::error::ConfigError> {
                $crate::session::SessionManager::from_config(config)
                    .await
                    .map(Self::from)
            }

            #[doc = concat!("The manager behind the ", $what, ".")]
            #[must_use]
            pub fn manager(&self) -> &$crate::session::SessionManager {
                &self.manager
            }
        }

        impl From<$crate::session::SessionManager> for $name {
            fn from(manager: $crate::session::SessionManager) -> Self {
                Self { manager }
            }
        }
    };
}

#[cfg(feature = "actix")]
#[cfg_attr(docsrs, doc(cfg(feature = "actix")))]
pub mod actix;
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod tower;
