use tower_layer::Layer;

use crate::config::SessionConfig;
use crate::error::ConfigError;
use crate::session::SessionManager;
use crate::store::SessionStore;

use super::SessionService;

/// A tower [`Layer`] that gives every request a [`Session`](crate::Session).
///
/// Built once, mounted on any tower service or axum router. Cloning is cheap.
///
/// # Examples
///
/// ```
/// use satchel::{MemoryStore, SessionConfig, SessionLayer};
///
/// let layer = SessionLayer::new(MemoryStore::default(), SessionConfig::default());
/// // Or from SESSION_* settings, store included:
/// # tokio_test::block_on(async {
/// let layer = SessionLayer::from_config(SessionConfig::default()).await?;
/// # Ok::<_, satchel::ConfigError>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct SessionLayer {
    manager: SessionManager,
}

impl SessionLayer {
    /// A layer over `store` with `config`.
    ///
    /// # Panics
    ///
    /// Panics when the configuration is invalid; [`SessionLayer::try_new`] returns the
    /// error instead.
    #[must_use]
    pub fn new(store: impl SessionStore, config: SessionConfig) -> Self {
        match Self::try_new(store, config) {
            Ok(layer) => layer,
            Err(error) => panic!("invalid session configuration: {error}"),
        }
    }

    /// A layer over `store` with `config`, or why the configuration is invalid.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] when the configuration contradicts itself.
    pub fn try_new(store: impl SessionStore, config: SessionConfig) -> Result<Self, ConfigError> {
        SessionManager::new(store, config).map(Self::from)
    }

    /// A layer whose store is built from SESSION_TYPE and the store settings.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] when the configuration is invalid or the store cannot be opened.
    pub async fn from_config(config: SessionConfig) -> Result<Self, ConfigError> {
        SessionManager::from_config(config).await.map(Self::from)
    }

    /// The manager behind the layer.
    #[must_use]
    pub fn manager(&self) -> &SessionManager {
        &self.manager
    }
}

impl From<SessionManager> for SessionLayer {
    fn from(manager: SessionManager) -> Self {
        Self { manager }
    }
}

impl<S> Layer<S> for SessionLayer {
    type Service = SessionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService::new(inner, self.manager.clone())
    }
}
