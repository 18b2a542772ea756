#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod config;
mod cookie;
pub mod error;
#[cfg(feature = "flask")]
#[cfg_attr(docsrs, doc(cfg(feature = "flask")))]
pub mod flask;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod id;
#[cfg(any(feature = "axum", feature = "actix"))]
pub mod integration;
pub mod observability;
pub mod record;
pub mod session;
#[cfg(feature = "signed")]
#[cfg_attr(docsrs, doc(cfg(feature = "signed")))]
pub mod signing;
pub mod store;
mod support;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;

pub use config::{FailurePolicy, FlaskCompat, SameSite, Secret, SessionConfig, SessionType};
pub use error::{ConfigError, Error, StoreError};
pub use id::SessionId;
#[cfg(feature = "actix")]
#[cfg_attr(docsrs, doc(cfg(feature = "actix")))]
pub use integration::actix::{SessionExt, SessionMiddleware};
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use integration::tower::{SessionLayer, SessionRejection, SessionService};
pub use record::{Changes, Data, Record};
pub use session::{
    BreakerState, Disposition, Finished, Health, Outcome, Replacement, Session, SessionInfo,
    SessionManager, SessionStatus,
};
#[cfg(feature = "filesystem")]
#[cfg_attr(docsrs, doc(cfg(feature = "filesystem")))]
pub use store::FilesystemStore;
#[cfg(feature = "memcached")]
#[cfg_attr(docsrs, doc(cfg(feature = "memcached")))]
pub use store::MemcachedStore;
#[cfg(feature = "mongodb")]
#[cfg_attr(docsrs, doc(cfg(feature = "mongodb")))]
pub use store::MongoStore;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use store::RedisStore;
#[cfg(feature = "mysql")]
#[cfg_attr(docsrs, doc(cfg(feature = "mysql")))]
pub use store::sql::MySqlStore;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use store::sql::PostgresStore;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use store::sql::SqliteStore;
pub use store::{ExpiredDeletion, MemoryStore, NullStore, SessionStore};
