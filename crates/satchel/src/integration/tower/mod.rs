//! tower and axum: [`SessionLayer`], [`SessionService`] and the [`Session`](crate::Session)
//! extractor.
//!
//! # Examples
//!
//! ```
//! use axum::{Router, routing::get};
//! use satchel::{MemoryStore, Session, SessionConfig, SessionLayer};
//!
//! async fn visits(session: Session) -> Result<String, satchel::Error> {
//!     let n: u64 = session.get("visits").await?.unwrap_or(0) + 1;
//!     session.insert("visits", n).await?;
//!     Ok(format!("visit number {n}"))
//! }
//!
//! let config = SessionConfig::default();
//! let app: Router = Router::new()
//!     .route("/", get(visits))
//!     .layer(SessionLayer::new(MemoryStore::default(), config));
//! ```

mod extract;
mod layer;
mod service;

pub use extract::SessionRejection;
pub use layer::SessionLayer;
pub use service::SessionService;
