//! What Satchel records for the people who run it: metrics through the [`metrics`] facade.
//!
//! Satchel records; the application chooses where the figures go by installing a
//! recorder (`metrics-exporter-prometheus`, or any other). Without one, recording costs a
//! few calls that do nothing. `satchel serve --metrics-bind ADDR` serves them at
//! `/metrics` in the Prometheus text format.
//!
//! | name | type | labels | what |
//! | --- | --- | --- | --- |
//! | `satchel_store_operations_total` | counter | `store`, `operation`, `result` | every call to the store; `result` is `ok`, `error` (the backend failed or did not answer), `corrupt` (an entry that does not decode) or `unsupported` |
//! | `satchel_store_operation_duration_seconds` | histogram | `store`, `operation` | how long each call took, failures included |
//! | `satchel_sessions_total` | counter | `event` | sessions `created`, `cycled` (a new id at log-in), `refreshed` (an expiry moved by a read), `destroyed` |
//! | `satchel_decode_failures_total` | counter | `store` | stored entries that did not decode (each then reads as no session) |
//!
//! `store` is [`SessionStore::name`](crate::SessionStore::name) (`redis`, `postgres`, …);
//! `operation` is `load`, `refresh` (a load that moves the expiry), `save`, `cycle`,
//! `update`, `delete`, `list` or `ping`. No label ever carries a session id, a user id or
//! a cookie value, so the number of series stays small and nothing secret leaves.

use std::future::Future;
use std::time::Instant;

use crate::error::StoreError;

/// Runs one store call, counting it and timing it under `store` and `operation`.
pub(crate) async fn metered<T>(
    store: &'static str,
    operation: &'static str,
    call: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    let started = Instant::now();
    let result = call.await;
    let outcome = match &result {
        Ok(_) => "ok",
        Err(StoreError::Decode(_)) => {
            ::metrics::counter!("satchel_decode_failures_total", "store" => store).increment(1);
            "corrupt"
        }
        Err(StoreError::Unsupported(_)) => "unsupported",
        Err(_) => "error",
    };
    ::metrics::counter!(
        "satchel_store_operations_total",
        "store" => store,
        "operation" => operation,
        "result" => outcome
    )
    .increment(1);
    ::metrics::histogram!(
        "satchel_store_operation_duration_seconds",
        "store" => store,
        "operation" => operation
    )
    .record(started.elapsed());
    result
}

/// Something that happened to a session, for `satchel_sessions_total`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Event {
    Created,
    Cycled,
    Refreshed,
    Destroyed,
}

impl Event {
    /// Counts the event.
    pub(crate) fn record(self) {
        let event = match self {
            Self::Created => "created",
            Self::Cycled => "cycled",
            Self::Refreshed => "refreshed",
            Self::Destroyed => "destroyed",
        };
        ::metrics::counter!("satchel_sessions_total", "event" => event).increment(1);
    }
}
