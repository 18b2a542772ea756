//! Deleting expired rows: batch by batch ([`in_batches`], reporting [`Progress`]), and
//! every interval in a background task ([`spawn_cleanup`]).

use std::future::Future;
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::codec::now;
use crate::error::StoreError;
use crate::support::chain;

/// Progress of a batched cleanup, reported after every batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Progress {
    /// Batches run so far, this one included.
    pub batches: u64,
    /// Rows this batch deleted.
    pub deleted_in_batch: u64,
    /// Rows deleted so far.
    pub deleted: u64,
}

/// Deletes expired rows batch by batch with `batch`, which deletes at most `size` rows
/// older than `now` and says how many went.
pub(super) async fn in_batches<F, Fut>(
    size: u64,
    mut progress: impl FnMut(Progress),
    mut batch: F,
) -> Result<u64, StoreError>
where
    F: FnMut(i64, i64) -> Fut,
    Fut: Future<Output = Result<u64, StoreError>>,
{
    let size = size.clamp(1, i64::MAX.cast_unsigned());
    let limit = size.cast_signed();
    let now = now();
    let mut report = Progress {
        batches: 0,
        deleted_in_batch: 0,
        deleted: 0,
    };
    loop {
        let deleted = batch(now, limit).await?;
        report.batches += 1;
        report.deleted_in_batch = deleted;
        report.deleted += deleted;
        progress(report);
        if deleted < size {
            return Ok(report.deleted);
        }
        tokio::task::yield_now().await;
    }
}

/// Starts the background cleanup of a store's `inner`: every `interval`, while the store
/// is alive, `sweep` runs; failures are logged and the task carries on.
pub(super) fn spawn_cleanup<T, F, Fut>(
    inner: Weak<T>,
    interval: Duration,
    sweep: F,
) -> tokio::task::JoinHandle<()>
where
    T: Send + Sync + 'static,
    F: Fn(Arc<T>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<u64, StoreError>> + Send,
{
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval.max(Duration::from_millis(10)));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            let Some(inner) = inner.upgrade() else { break };
            match sweep(inner).await {
                Ok(0) => {}
                Ok(deleted) => tracing::debug!(deleted, "deleted expired sessions"),
                Err(error) => tracing::warn!(
                    error = %chain(&error),
                    "deleting expired sessions failed; retrying at the next interval"
                ),
            }
        }
    })
}
