use tower_layer::Layer;

use crate::session::SessionManager;

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

entry_point!(SessionLayer, "layer");

impl<S> Layer<S> for SessionLayer {
    type Service = SessionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService::new(inner, self.manager.clone())
    }
}
