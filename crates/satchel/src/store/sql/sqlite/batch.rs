//! SQLite's grouped reads and batched writes: plain loads queued meanwhile are read with
//! one statement, and saves queued meanwhile are written in one transaction.

use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::oneshot;

use super::Inner;
use crate::error::StoreError;
use crate::record::Changes;
use crate::store::Saved;
use crate::store::sql::codec::{Row, now};
use crate::store::sql::write::Attempt;
use crate::support::chain;

/// Grouped reads in flight at once (see [`Inner::load_grouped`]).
pub(super) const READERS: usize = 2;
/// The most ids one grouped read asks for.
const MAX_GROUP: usize = 32;

/// A plain load waiting to be read with the next group.
pub(super) struct Read {
    key: String,
    reply: oneshot::Sender<Result<Option<Row>, StoreError>>,
}

/// One save waiting to be written with the next batch.
pub(super) struct Job {
    key: String,
    kind: JobKind,
    reply: oneshot::Sender<Result<Saved, StoreError>>,
}

pub(super) enum JobKind {
    /// Apply a change set onto the row, read under the write lock.
    Apply { changes: Changes, at: SystemTime },
    /// Write what the request saw (`None`: delete the row) while the row is still at
    /// `version`; otherwise apply `changes` as [`JobKind::Apply`] does.
    Seen {
        version: i64,
        bytes: Option<Vec<u8>>,
        changes: Changes,
        at: SystemTime,
    },
}

/// A save inside a batch found its row created by someone else meanwhile, which the
/// batch's write lock rules out; the batch is then written again save by save.
#[derive(Debug, thiserror::Error)]
#[error("a session row appeared during a batched save")]
struct BatchConflict;

/// A grouped read ended without answering (its task was aborted).
#[derive(Debug, thiserror::Error)]
#[error("the grouped read ended without reading the session")]
struct ReaderGone;

/// A batch writer ended without answering (its task was aborted).
#[derive(Debug, thiserror::Error)]
#[error("the batch writer ended without writing the session")]
struct WriterGone;

impl Inner {
    /// The live row at `key`, read along with the other plain loads queued meanwhile:
    /// the load that gets a reader permit reads every queued key (up to [`MAX_GROUP`])
    /// in one statement, in a task of its own so that a cancelled request does not
    /// strand the others.
    pub(super) async fn load_grouped(
        self: &Arc<Self>,
        key: String,
    ) -> Result<Option<Row>, StoreError> {
        let (reply, mut answer) = oneshot::channel();
        lock(&self.reads).push(Read { key, reply });
        let permit = Arc::clone(&self.readers)
            .acquire_owned()
            .await
            .map_err(StoreError::backend)?;
        // A group read while this one waited may have taken this load along.
        if let Ok(result) = answer.try_recv() {
            return result;
        }
        let group: Vec<Read> = {
            let mut reads = lock(&self.reads);
            let take = reads.len().min(MAX_GROUP);
            reads.drain(..take).collect()
        };
        let inner = Arc::clone(self);
        tokio::spawn(async move {
            inner.read_group(group).await;
            drop(permit);
        });
        answer
            .await
            .unwrap_or_else(|_| Err(StoreError::backend(ReaderGone)))
    }

    /// Reads the live rows of `group` with one statement and answers each load; if the
    /// statement fails, each load is read alone, so a failure reaches only its own.
    async fn read_group(&self, group: Vec<Read>) {
        if group.is_empty() {
            return;
        }
        let sql = self.sql.select_many(group.len());
        let mut query = sqlx::query_as::<_, (String, Vec<u8>, i64, i64)>(&sql);
        for read in &group {
            query = query.bind(&read.key);
        }
        match query.bind(now()).fetch_all(&self.pool).await {
            Ok(rows) => {
                let found: std::collections::HashMap<String, Row> = rows
                    .into_iter()
                    .map(|(key, bytes, expiry, version)| (key, (bytes, expiry, version)))
                    .collect();
                for read in group {
                    // A key asked twice (two requests of one session) is answered twice.
                    let _ = read.reply.send(Ok(found.get(&read.key).cloned()));
                }
            }
            Err(_) => {
                for read in group {
                    let row = sqlx::query_as(&self.sql.select)
                        .bind(&read.key)
                        .bind(now())
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(StoreError::backend);
                    let _ = read.reply.send(row);
                }
            }
        }
    }

    /// Queues a save for the next batch and waits for its result.
    ///
    /// SQLite takes one writer at a time, and each commit costs far more than the
    /// statement it commits. So saves from concurrent requests are written together:
    /// the first request to find the writer free takes every save queued so far and
    /// writes them in one `BEGIN IMMEDIATE` transaction, each save exactly as it would
    /// be written alone (so a later save of the same session sees the earlier one);
    /// saves queued meanwhile go with the next batch. If the batch fails, its saves are
    /// written again one by one, so that one bad save fails only its own request.
    pub(super) async fn submit(
        self: &Arc<Self>,
        key: String,
        kind: JobKind,
    ) -> Result<Saved, StoreError> {
        let (reply, mut answer) = oneshot::channel();
        lock(&self.queue).push(Job { key, kind, reply });
        let writer = Arc::clone(&self.writer).lock_owned().await;
        // A batch that ran while this one waited may have taken this save along.
        if let Ok(result) = answer.try_recv() {
            return result;
        }
        let jobs = std::mem::take(&mut *lock(&self.queue));
        let inner = Arc::clone(self);
        // In a task of its own: a request cancelled meanwhile (its client went away)
        // must not abort the transaction that carries other requests' saves.
        tokio::spawn(async move {
            inner.write_batch(jobs).await;
            drop(writer);
        });
        answer
            .await
            .unwrap_or_else(|_| Err(StoreError::backend(WriterGone)))
    }

    async fn write_batch(&self, jobs: Vec<Job>) {
        if jobs.len() > 1 {
            match self.try_batch(&jobs).await {
                Ok(results) => {
                    for (job, result) in jobs.into_iter().zip(results) {
                        let _ = job.reply.send(Ok(result));
                    }
                    return;
                }
                Err(error) => tracing::debug!(
                    error = %chain(&error),
                    "a batch of session saves failed; writing them one by one"
                ),
            }
        }
        for job in jobs {
            let result = self.write_alone(&job.key, &job.kind).await;
            let _ = job.reply.send(result);
        }
    }

    async fn try_batch(&self, jobs: &[Job]) -> Result<Vec<Saved>, StoreError> {
        let mut tx = self.begin_write().await?;
        let mut results = Vec::with_capacity(jobs.len());
        for job in jobs {
            let (changes, at) = match &job.kind {
                JobKind::Seen {
                    version,
                    bytes,
                    changes,
                    at,
                } => {
                    if let Some(saved) = self
                        .write_seen(&mut *tx, &job.key, *version, bytes.as_deref(), *at)
                        .await?
                    {
                        results.push(saved);
                        continue;
                    }
                    (changes, *at)
                }
                JobKind::Apply { changes, at } => (changes, *at),
            };
            match self.apply_on(&mut tx, &job.key, changes, at).await? {
                Attempt::Done(saved) => results.push(saved),
                Attempt::Retry => return Err(StoreError::backend(BatchConflict)),
                Attempt::Aborted(error) => return Err(StoreError::backend(error)),
            }
        }
        tx.commit().await.map_err(StoreError::backend)?;
        Ok(results)
    }

    /// One save on its own: the conditional write, then the locked read-modify-write.
    async fn write_alone(&self, key: &str, kind: &JobKind) -> Result<Saved, StoreError> {
        match kind {
            JobKind::Apply { changes, at } => self.save(key, changes, *at).await,
            JobKind::Seen {
                version,
                bytes,
                changes,
                at,
            } => match self
                .write_seen(&self.pool, key, *version, bytes.as_deref(), *at)
                .await?
            {
                Some(saved) => Ok(saved),
                None => self.save(key, changes, *at).await,
            },
        }
    }
}

/// Locks a queue of saves or loads; nothing panics while it is held.
fn lock<T>(queue: &std::sync::Mutex<Vec<T>>) -> std::sync::MutexGuard<'_, Vec<T>> {
    queue
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
