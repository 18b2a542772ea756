//! Whether sessions work: the store's answer to a ping, for health checks.

use std::time::{Duration, Instant};

use super::{BreakerState, SessionManager};
use crate::error::StoreError;
use crate::store::SessionStore;
use crate::support::Chain;

/// The answer of [`SessionManager::health`].
#[derive(Debug)]
#[non_exhaustive]
pub struct Health {
    /// How long the store took to answer, or to fail.
    pub took: Duration,
    /// Why the store cannot serve requests; `None` when it can.
    pub error: Option<StoreError>,
    /// Where the circuit breaker stands after the check (which always asks the store and
    /// counts like a request: a successful check closes an open breaker); `None` without
    /// a breaker.
    pub breaker: Option<BreakerState>,
}

impl Health {
    /// Whether the store can serve requests.
    #[must_use]
    pub fn is_ok(&self) -> bool {
        self.error.is_none()
    }

    /// Why the store cannot serve requests, the error with its causes (`outer: inner`),
    /// for a health endpoint's body or a log line; `None` when it can.
    #[must_use]
    pub fn reason(&self) -> Option<String> {
        self.error.as_ref().map(|error| Chain(error).to_string())
    }
}

impl SessionManager {
    /// Asks the store whether it answers ([`SessionStore::ping`]): for a health endpoint
    /// or a readiness probe. A networked store answers within its timeout
    /// (SESSION_STORE_TIMEOUT), so a store that is down fails the check rather than
    /// holding it.
    ///
    /// # Examples
    ///
    /// ```
    /// use satchel::{SessionConfig, SessionManager, SessionType};
    ///
    /// # tokio_test::block_on(async {
    /// let config = SessionConfig::default().with_session_type(SessionType::Memory);
    /// let manager = SessionManager::from_config(config).await?;
    /// let health = manager.health().await;
    /// assert!(health.is_ok(), "{:?}", health.error);
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn health(&self) -> Health {
        let started = Instant::now();
        let answer = self.shared.store.ping().await;
        Health {
            took: started.elapsed(),
            error: answer.err(),
            breaker: self.shared.store.publish_breaker(),
        }
    }
}
