//! Framework integrations: each only applies the engine's [`Outcome`](crate::Outcome).

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
