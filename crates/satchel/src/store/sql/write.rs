//! Write planning for the locked read-modify-writes (a save that lost its race, an id
//! rotation, a key update): what to write onto the row found under the lock ([`Write`],
//! [`plan`], [`plan_update`]), and the retries of a transaction that lost a race or that
//! the database aborted ([`Attempt`], [`settle`], [`retrying`]).

use std::future::Future;
use std::time::{Duration, SystemTime};

use super::codec::{Row, encode, record};
use crate::error::StoreError;
use crate::record::{Changes, KeyUpdate, Updated};
use crate::store::Saved;

/// How many times a locked save is tried before it gives up: again after losing a race
/// to create the row, or after the database aborted its transaction.
const MAX_ATTEMPTS: usize = 5;

/// What a locked read-modify-write writes.
#[derive(Debug)]
pub(super) enum Write {
    /// No row existed: insert this.
    Insert(Vec<u8>),
    /// Overwrite the existing row with this.
    Update(Vec<u8>),
    /// Delete the existing row.
    Delete,
    /// No row, and nothing to write.
    Nothing,
}

impl Write {
    /// The same plan for moving the entry to a new id: the bytes to store under the new
    /// id, if any, and whether the row under the old id exists and must be deleted.
    pub(super) fn into_move(self) -> (Option<Vec<u8>>, bool) {
        match self {
            Write::Insert(bytes) => (Some(bytes), false),
            Write::Update(bytes) => (Some(bytes), true),
            Write::Delete => (None, true),
            Write::Nothing => (None, false),
        }
    }
}

/// Applies `changes` onto the row found under the lock (an expired or corrupt row counts
/// as none) and says what to write.
pub(super) fn plan(
    found: Option<Row>,
    changes: &Changes,
    expires_at: SystemTime,
    now: i64,
) -> Result<(Write, Saved), StoreError> {
    let existed = found.is_some();
    let base = match found.filter(|(_, expiry, _)| *expiry > now).map(record) {
        None => None,
        Some(Ok(record)) => Some(record),
        Some(Err(StoreError::Decode(error))) => {
            tracing::warn!(%error, "replacing a stored session that could not be decoded");
            None
        }
        Some(Err(error)) => return Err(error),
    };
    Ok(match changes.apply_to(base, expires_at)? {
        Some(record) => {
            let bytes = encode(&record.data, record.meta())?;
            let write = if existed {
                Write::Update(bytes)
            } else {
                Write::Insert(bytes)
            };
            (write, Saved::Stored)
        }
        None if existed => (Write::Delete, Saved::Empty),
        None => (Write::Nothing, Saved::Empty),
    })
}

/// Applies `update` to `name` (a session key) of the row found under the lock, and says
/// what to write: the row's new data column ([`Write::Update`], written with the row's
/// own expiry), the row's deletion when no key is left, or nothing. An expired row counts
/// as none ([`Updated::Missing`]); a row that cannot be decoded is an error, and is left
/// as it is.
pub(super) fn plan_update(
    found: Option<Row>,
    name: &str,
    update: &KeyUpdate,
    now: i64,
) -> Result<(Write, Updated), StoreError> {
    let Some(row) = found.filter(|(_, expiry, _)| *expiry > now) else {
        return Ok((Write::Nothing, Updated::Missing));
    };
    let mut stored = record(row)?;
    let updated = update.apply_to(&mut stored.data, name)?;
    let write = match updated {
        Updated::Applied(_) if stored.data.is_empty() => Write::Delete,
        Updated::Applied(_) => Write::Update(encode(&stored.data, stored.meta())?),
        _ => Write::Nothing,
    };
    Ok((write, updated))
}

/// A save gave up after losing [`MAX_ATTEMPTS`] races in a row: each time, a concurrent
/// transaction created the row after the locked read found none.
#[derive(Debug, thiserror::Error)]
#[error("the session row kept changing under concurrent writes")]
struct Contended;

/// A save gave up after [`MAX_ATTEMPTS`] attempts, of which the database aborted at
/// least one (the others lost a race); the source is the database's last error (a
/// deadlock it broke, a lock it gave up waiting for).
#[derive(Debug, thiserror::Error)]
#[error("the database aborted the session's transaction {aborted} of {attempts} times")]
struct Aborted {
    aborted: usize,
    attempts: usize,
    #[source]
    source: sqlx::Error,
}

/// Whether a failed attempt of a locked save should be run again: a concurrent
/// transaction created the row first, or the database aborted the transaction.
pub(super) enum Attempt<T> {
    Done(T),
    /// A concurrent transaction created the row after the locked read found none.
    Retry,
    /// The database rolled the transaction back to break a deadlock, or gave up waiting
    /// for a lock, and asks for the transaction to be run again.
    Aborted(sqlx::Error),
}

/// A database error worth another attempt of a locked save.
#[derive(Debug)]
pub enum Transient {
    /// A concurrent transaction created the row first (a duplicate key).
    Raced,
    /// The database aborted the transaction: a deadlock, a lock wait timeout.
    Aborted,
}

/// A failure inside a locked save: the database's own, or the store's.
#[derive(Debug)]
pub(super) enum Failure {
    Sql(sqlx::Error),
    Store(StoreError),
}

impl From<sqlx::Error> for Failure {
    fn from(error: sqlx::Error) -> Self {
        Self::Sql(error)
    }
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

/// The outcome of one attempt of a locked save: failures `transient` recognizes (a row
/// another transaction created first, a transaction the database aborted) are tried
/// again.
pub(super) fn settle<T>(
    result: Result<Attempt<T>, Failure>,
    transient: impl Fn(&sqlx::Error) -> Option<Transient>,
) -> Result<Attempt<T>, StoreError> {
    match result {
        Ok(attempt) => Ok(attempt),
        Err(Failure::Sql(error)) => match transient(&error) {
            Some(Transient::Raced) => Ok(Attempt::Retry),
            Some(Transient::Aborted) => Ok(Attempt::Aborted(error)),
            None => Err(StoreError::backend(error)),
        },
        Err(Failure::Store(error)) => Err(error),
    }
}

/// Runs `attempt` until it is done, at most [`MAX_ATTEMPTS`] times, pausing briefly
/// before each new attempt. The error after the last says why it failed: a race lost
/// to concurrent writes, or the database's own error.
pub(super) async fn retrying<T, F, Fut>(mut attempt: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Attempt<T>, StoreError>>,
{
    let mut aborted = 0;
    let mut last = None;
    for n in 0..MAX_ATTEMPTS {
        if n > 0 {
            pause(n).await;
        }
        match attempt().await? {
            Attempt::Done(value) => return Ok(value),
            Attempt::Retry => {}
            Attempt::Aborted(error) => {
                aborted += 1;
                last = Some(error);
            }
        }
    }
    Err(match last {
        Some(source) => StoreError::backend(Aborted {
            aborted,
            attempts: MAX_ATTEMPTS,
            source,
        }),
        None => StoreError::Contended(Box::new(Contended)),
    })
}

/// A short random pause before attempt `n` (from 1) of a locked save, growing with `n`
/// (up to 16 ms), so that transactions that collided do not meet again in step.
async fn pause(n: usize) {
    let cap = 1000_u32 << n.min(4);
    let micros = getrandom::u32().unwrap_or(cap / 2) % cap;
    tokio::time::sleep(Duration::from_micros(u64::from(micros))).await;
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::record::Data;
    use crate::store::sql::codec::now;
    use crate::support::chain;
    use serde_json::json;

    #[test]
    fn a_plan_applies_changes_onto_the_live_row_only() {
        let now = now();
        let at = SystemTime::now() + Duration::from_secs(60);
        let row = |expiry| {
            let data = Data::from([("a".to_owned(), json!(1))]);
            (
                encode(
                    &data,
                    crate::record::Meta {
                        permanent: Some(false),
                        ..Default::default()
                    },
                )
                .unwrap(),
                expiry,
                7,
            )
        };
        let mut changes = Changes::default();
        changes.set("b", json!(2));

        let (write, saved) = plan(Some(row(now + 1000)), &changes, at, now).unwrap();
        let Write::Update(bytes) = write else {
            panic!("{write:?}")
        };
        let merged = record((bytes, 0, 0)).unwrap();
        assert_eq!(merged.data.len(), 2);
        assert_eq!(merged.permanent, Some(false));
        assert_eq!(saved, Saved::Stored);

        // An expired row is replaced, not merged.
        let (write, _) = plan(Some(row(now)), &changes, at, now).unwrap();
        let Write::Update(bytes) = write else {
            panic!("{write:?}")
        };
        assert_eq!(record((bytes, 0, 0)).unwrap().data.len(), 1);

        let (write, _) = plan(None, &changes, at, now).unwrap();
        assert!(matches!(write, Write::Insert(_)));
        let corrupt = (b"\xc1".to_vec(), now + 1000, 1);
        let (write, _) = plan(Some(corrupt), &changes, at, now).unwrap();
        assert!(matches!(write, Write::Update(_)));

        let mut remove = Changes::default();
        remove.remove("a");
        let (write, saved) = plan(Some(row(now + 1000)), &remove, at, now).unwrap();
        assert!(matches!(write, Write::Delete) && saved == Saved::Empty);
        let (write, saved) = plan(None, &remove, at, now).unwrap();
        assert!(matches!(write, Write::Nothing) && saved == Saved::Empty);
    }

    #[tokio::test]
    async fn a_save_that_gives_up_says_why() {
        let raced = retrying(|| async { Ok::<_, StoreError>(Attempt::<()>::Retry) })
            .await
            .unwrap_err();
        assert_eq!(
            chain(&raced),
            "session store gave up on a contended write: the session row kept changing under \
             concurrent writes"
        );
        let mut attempts = 0;
        let aborted = retrying(|| {
            attempts += 1;
            let attempt = if attempts % 2 == 0 {
                Attempt::<()>::Retry
            } else {
                Attempt::Aborted(sqlx::Error::PoolTimedOut)
            };
            async move { Ok::<_, StoreError>(attempt) }
        })
        .await
        .unwrap_err();
        assert_eq!(attempts, MAX_ATTEMPTS);
        let text = chain(&aborted);
        assert!(
            text.starts_with(
                "session backend failed: the database aborted the session's transaction 3 of 5 \
                 times: "
            ),
            "{text}"
        );
    }
}
