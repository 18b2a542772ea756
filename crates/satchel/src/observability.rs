//! What Satchel records for the people who run it: metrics through the [`metrics`] facade,
//! and traces through [`tracing`].
//!
//! Satchel records; the application chooses where the figures go by installing a
//! recorder (`metrics-exporter-prometheus`, or any other), before or after the first
//! request. Each thread registers its handles at a store's first call of each kind, and
//! again when the recorder in force changes, so a call costs a clock reading or two and a
//! few increments, not a lookup by name. `satchel serve --metrics-bind ADDR` serves them
//! at `/metrics` in the Prometheus text format.
//!
//! | name | type | labels | what |
//! | --- | --- | --- | --- |
//! | `satchel_store_operations_total` | counter | `store`, `operation`, `result` | every call to the store; `result` is `ok`, `error` (the backend failed, did not answer, or gave up on a write contended by concurrent writes), `corrupt` (an entry that does not decode) or `unsupported` |
//! | `satchel_store_operation_duration_seconds` | histogram | `store`, `operation` | how long each call took, failures included |
//! | `satchel_sessions_total` | counter | `event` | sessions `created`, `cycled` (a new id at log-in), `refreshed` (an expiry moved by a read), `destroyed`, `expired` (loaded past SESSION_ABSOLUTE_LIFETIME, and deleted) |
//! | `satchel_decode_failures_total` | counter | `store` | stored entries that did not decode (each then reads as no session) |
//! | `satchel_merge_conflicts_total` | counter | `store` | conditional writes that found a newer entry, so the change set was applied again onto it (memcached's compare-and-swap; stores that merge inside the backend, under a lock or in a transaction never see one) |
//! | `satchel_breaker_state` | gauge | `store` | the circuit breaker: `0` closed, `1` open, `2` probing (one request trying the store) |
//! | `satchel_breaker_rejections_total` | counter | `store` | store calls the open breaker answered at once, without asking the store |
//! | `satchel_writes_dropped_total` | counter | | requests whose session changes were dropped because the store failed, under `SESSION_STORE_FAILURE=anonymous` |
//!
//! `store` is [`SessionStore::name`](crate::SessionStore::name) (`redis`, `postgres`, …);
//! `operation` is `load`, `refresh` (a load that moves the expiry), `save`, `cycle`,
//! `update`, `delete`, `list` or `ping`. No label ever carries a session id, a user id or
//! a cookie value, so the number of series stays small and nothing secret leaves.
//!
//! # Traces
//!
//! Every store call runs in a `satchel.store` span at `DEBUG` level, with the fields
//! `store`, `operation`, and once it ends `micros` (how long it took) and `result` (as
//! above). The axum and actix-web integrations put each request in a `satchel.request`
//! span around them, with the request's method, path, status and
//! [`Disposition`](crate::Disposition). Neither carries a session id or a cookie.

use std::cell::RefCell;
use std::future::Future;
use std::time::Instant;

use metrics::{Counter, Histogram};

use tracing::Instrument as _;

use crate::error::StoreError;

/// A kind of store call, for the `operation` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operation {
    Load,
    Refresh,
    Save,
    Cycle,
    Update,
    Delete,
    List,
    Ping,
}

impl Operation {
    const COUNT: usize = 8;

    fn as_str(self) -> &'static str {
        match self {
            Self::Load => "load",
            Self::Refresh => "refresh",
            Self::Save => "save",
            Self::Cycle => "cycle",
            Self::Update => "update",
            Self::Delete => "delete",
            Self::List => "list",
            Self::Ping => "ping",
        }
    }
}

/// The `result` label's values, in the order of [`Meters::results`].
const RESULTS: [&str; 4] = ["ok", "error", "corrupt", "unsupported"];

/// The handles of one store's calls of one kind, registered with one recorder.
struct Meters {
    /// The recorder they were registered with (its address).
    recorder: usize,
    store: &'static str,
    results: [Counter; RESULTS.len()],
    duration: Histogram,
}

impl Meters {
    fn register(recorder: usize, store: &'static str, operation: Operation) -> Self {
        let operation = operation.as_str();
        Self {
            recorder,
            store,
            results: RESULTS.map(|result| {
                ::metrics::counter!(
                    "satchel_store_operations_total",
                    "store" => store,
                    "operation" => operation,
                    "result" => result
                )
            }),
            duration: ::metrics::histogram!(
                "satchel_store_operation_duration_seconds",
                "store" => store,
                "operation" => operation
            ),
        }
    }
}

thread_local! {
    /// Each thread's handles, one slot per kind of call: registering a metric builds its
    /// key (an allocation) and asks the recorder, which a store call would otherwise pay
    /// twice. A slot is registered again when the store or the recorder in force (the
    /// global one, or a thread's local one) is another.
    static METERS: RefCell<[Option<Meters>; Operation::COUNT]> =
        const { RefCell::new([const { None }; Operation::COUNT]) };
}

/// The address of the recorder in force on this thread.
fn recorder_in_force() -> usize {
    ::metrics::with_recorder(|recorder| std::ptr::from_ref(recorder).cast::<()>().addr())
}

/// Runs one store call in a `satchel.store` span, counting it and timing it under
/// `store` and `operation`.
pub(crate) async fn metered<T>(
    store: &'static str,
    operation: Operation,
    call: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    let span = tracing::debug_span!(
        "satchel.store",
        store,
        operation = operation.as_str(),
        micros = tracing::field::Empty,
        result = tracing::field::Empty,
    );
    let started = Instant::now();
    let result = call.instrument(span.clone()).await;
    let took = started.elapsed();
    let outcome = match &result {
        Ok(_) => 0,
        Err(StoreError::Decode(_)) => {
            decode_failed(store);
            2
        }
        Err(StoreError::Unsupported(_)) => 3,
        Err(_) => 1,
    };
    let recorder = recorder_in_force();
    METERS.with_borrow_mut(|slots| {
        let slot = &mut slots[operation as usize];
        let meters = match slot {
            Some(meters) if meters.recorder == recorder && meters.store == store => meters,
            _ => slot.insert(Meters::register(recorder, store, operation)),
        };
        meters.results[outcome].increment(1);
        meters.duration.record(took);
    });
    if !span.is_disabled() {
        span.record(
            "micros",
            u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
        );
        span.record("result", RESULTS[outcome]);
    }
    result
}

/// Counts a conditional write that found a newer entry than the one it was based on, so
/// that the change set had to be applied again onto the newer one
/// (`satchel_merge_conflicts_total`): for stores that keep versions and write under a
/// compare-and-swap. `store` is the store's [name](crate::SessionStore::name).
///
/// # Examples
///
/// ```
/// satchel::observability::record_conflict("custom");
/// ```
pub fn record_conflict(store: &'static str) {
    ::metrics::counter!("satchel_merge_conflicts_total", "store" => store).increment(1);
}

/// Counts a stored session that could not be decoded (`satchel_decode_failures_total`).
pub(crate) fn decode_failed(store: &'static str) {
    ::metrics::counter!("satchel_decode_failures_total", "store" => store).increment(1);
}

/// Counts a store call the open breaker refused.
pub(crate) fn breaker_rejected(store: &'static str) {
    ::metrics::counter!("satchel_breaker_rejections_total", "store" => store).increment(1);
}

/// Sets the breaker's gauge.
pub(crate) fn breaker_state(store: &'static str, state: f64) {
    ::metrics::gauge!("satchel_breaker_state", "store" => store).set(state);
}

/// Counts a request whose session changes were dropped (SESSION_STORE_FAILURE=anonymous).
pub(crate) fn write_dropped() {
    ::metrics::counter!("satchel_writes_dropped_total").increment(1);
}

/// Something that happened to a session, for `satchel_sessions_total`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Event {
    Created,
    Cycled,
    Refreshed,
    Destroyed,
    /// A session loaded past its absolute lifetime, and deleted.
    Expired,
}

impl Event {
    /// Counts the event.
    pub(crate) fn record(self) {
        let event = match self {
            Self::Created => "created",
            Self::Cycled => "cycled",
            Self::Refreshed => "refreshed",
            Self::Destroyed => "destroyed",
            Self::Expired => "expired",
        };
        ::metrics::counter!("satchel_sessions_total", "event" => event).increment(1);
    }
}
