//! What the server-backed stores (PostgreSQL, MySQL) share: the `server_store!` macro with
//! their common statements and store traits, their pool options (`server_pool`), and the
//! bound on every operation (`timed`).

use std::future::Future;
use std::time::Duration;

use crate::error::StoreError;

/// The parts of a server-backed store (PostgreSQL, MySQL) that are the same statements
/// whatever the database: its `Inner`'s save-from-what-was-seen, id cycling, delete and
/// batched expiry, and the store traits over that `Inner`. Each backend module expands
/// `server_store!(inner)` inside `impl Inner` and `server_store!(traits $Store)` at top
/// level; the names they use come from the backend module.
#[cfg(any(feature = "postgres", feature = "mysql"))]
macro_rules! server_store {
    (inner) => {
        async fn save_seen(
            &self,
            id: &SessionId,
            seen: Seen<'_>,
            changes: &Changes,
            at: SystemTime,
        ) -> Result<Saved, StoreError> {
            let key = self.key(id);
            let version = seen.version.cast_signed();
            let (query, saved) = if seen.data.is_empty() {
                let query = sqlx::query(&self.sql.delete_seen)
                    .bind(&key)
                    .bind(version)
                    .bind(now());
                (query, Saved::Empty)
            } else {
                let query = sqlx::query(&self.sql.update_seen)
                    .bind(encode(seen.data, seen.permanent)?)
                    .bind(millis(at))
                    .bind(&key)
                    .bind(version)
                    .bind(now());
                (query, Saved::Stored)
            };
            let done = query
                .execute(&self.pool)
                .await
                .map_err(StoreError::backend)?;
            // MySQL reports rows matched, not rows changed: the version moves on with every
            // update, so a match is always a change there too.
            if done.rows_affected() == 1 {
                return Ok(saved);
            }
            self.save(&key, changes, at).await
        }

        async fn cycle(
            &self,
            old: &str,
            new: &str,
            changes: &Changes,
            at: SystemTime,
        ) -> Result<Saved, StoreError> {
            retrying(|| async { settle(self.try_cycle(old, new, changes, at).await, transient) })
                .await
        }

        async fn try_cycle(
            &self,
            old: &str,
            new: &str,
            changes: &Changes,
            at: SystemTime,
        ) -> Result<Attempt<Saved>, Failure> {
            let mut tx = self.begin().await?;
            let found: Option<Row> = sqlx::query_as(&self.sql.lock)
                .bind(old)
                .fetch_optional(&mut *tx)
                .await?;
            let (write, saved) = plan(found, changes, at, now())?;
            let (bytes, old_exists) = write.into_move();
            if let Some(bytes) = bytes {
                sqlx::query(&self.sql.upsert)
                    .bind(new)
                    .bind(bytes)
                    .bind(millis(at))
                    .bind(fresh_version())
                    .execute(&mut *tx)
                    .await?;
            }
            if old_exists {
                sqlx::query(&self.sql.delete)
                    .bind(old)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(Attempt::Done(saved))
        }

        async fn update(
            &self,
            key: &str,
            name: &str,
            update: &KeyUpdate,
        ) -> Result<Updated, StoreError> {
            retrying(|| async { settle(self.try_update(key, name, update).await, transient) }).await
        }

        /// Applies `update` to the session key `name` of the row at `key`, locked `FOR
        /// UPDATE`; the transaction is committed whatever it wrote, so the lock goes at
        /// once.
        async fn try_update(
            &self,
            key: &str,
            name: &str,
            update: &KeyUpdate,
        ) -> Result<Attempt<Updated>, Failure> {
            let mut tx = self.begin().await?;
            let found: Option<Row> = sqlx::query_as(&self.sql.lock)
                .bind(key)
                .fetch_optional(&mut *tx)
                .await?;
            let (write, updated) = plan_update(found, name, update, now())?;
            match write {
                Write::Update(bytes) => {
                    sqlx::query(&self.sql.rewrite)
                        .bind(bytes)
                        .bind(key)
                        .execute(&mut *tx)
                        .await?;
                }
                Write::Delete => {
                    sqlx::query(&self.sql.delete)
                        .bind(key)
                        .execute(&mut *tx)
                        .await?;
                }
                Write::Insert(_) | Write::Nothing => {}
            }
            tx.commit().await?;
            Ok(Attempt::Done(updated))
        }

        async fn delete(&self, id: &SessionId) -> Result<(), StoreError> {
            sqlx::query(&self.sql.delete)
                .bind(self.key(id))
                .execute(&self.pool)
                .await
                .map_err(StoreError::backend)?;
            Ok(())
        }

        async fn delete_expired(
            &self,
            batch_size: u64,
            progress: impl FnMut(Progress) + Send,
        ) -> Result<u64, StoreError> {
            in_batches(batch_size, progress, |now, limit| {
                timed(self.timeout, async move {
                    sqlx::query(&self.sql.delete_batch)
                        .bind(now)
                        .bind(limit)
                        .execute(&self.pool)
                        .await
                        .map(|done| done.rows_affected())
                        .map_err(StoreError::backend)
                })
            })
            .await
        }
    };
    (traits $store:ident) => {
        impl SessionStore for $store {
            async fn load(
                &self,
                id: &SessionId,
                touch: Option<SystemTime>,
            ) -> Result<Option<Record>, StoreError> {
                timed(self.inner.timeout, self.inner.load(id, touch)).await
            }

            async fn save(
                &self,
                id: &SessionId,
                changes: &Changes,
                expires_at: SystemTime,
            ) -> Result<Saved, StoreError> {
                let key = self.inner.key(id);
                timed(
                    self.inner.timeout,
                    self.inner.save(&key, changes, expires_at),
                )
                .await
            }

            async fn save_seen(
                &self,
                id: &SessionId,
                seen: Seen<'_>,
                changes: &Changes,
                expires_at: SystemTime,
            ) -> Result<Saved, StoreError> {
                timed(
                    self.inner.timeout,
                    self.inner.save_seen(id, seen, changes, expires_at),
                )
                .await
            }

            async fn cycle(
                &self,
                old: &SessionId,
                new: &SessionId,
                changes: &Changes,
                expires_at: SystemTime,
            ) -> Result<Saved, StoreError> {
                if old == new {
                    return self.save(new, changes, expires_at).await;
                }
                let (old, new) = (self.inner.key(old), self.inner.key(new));
                timed(
                    self.inner.timeout,
                    self.inner.cycle(&old, &new, changes, expires_at),
                )
                .await
            }

            async fn update(
                &self,
                id: &SessionId,
                key: &str,
                update: &KeyUpdate,
            ) -> Result<Updated, StoreError> {
                let row = self.inner.key(id);
                timed(self.inner.timeout, self.inner.update(&row, key, update)).await
            }

            async fn delete(&self, id: &SessionId) -> Result<(), StoreError> {
                timed(self.inner.timeout, self.inner.delete(id)).await
            }
        }

        impl ExpiredDeletion for $store {
            /// Deletes every expired row, [`DEFAULT_BATCH_SIZE`](super::DEFAULT_BATCH_SIZE) rows
            /// per statement.
            async fn delete_expired(&self) -> Result<u64, StoreError> {
                self.inner
                    .delete_expired(super::DEFAULT_BATCH_SIZE, |_| {})
                    .await
            }
        }
    };
}
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub(super) use server_store;

/// A pooled connection to a database server that sat idle this long is pinged before
/// use (the server or a proxy may have closed it meanwhile).
#[cfg(any(feature = "postgres", feature = "mysql"))]
const PING_WHEN_IDLE: Duration = Duration::from_secs(30);

/// Pool options for a database server: `timeout` to get a connection, and a ping only
/// for a connection idle for [`PING_WHEN_IDLE`]. sqlx's default pings before every use,
/// which adds a round trip to every statement: a load would cost two.
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub(super) fn server_pool<DB: sqlx::Database>(timeout: Duration) -> sqlx::pool::PoolOptions<DB> {
    sqlx::pool::PoolOptions::new()
        .acquire_timeout(timeout)
        .test_before_acquire(false)
        .before_acquire(|connection, meta| {
            Box::pin(async move {
                if meta.idle_for >= PING_WHEN_IDLE {
                    sqlx::Connection::ping(connection).await?;
                }
                Ok(true)
            })
        })
}

/// Bounds `operation` by `timeout`: a server that stops answering fails the request
/// instead of holding it.
pub(super) async fn timed<T>(
    timeout: Duration,
    operation: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    tokio::time::timeout(timeout, operation)
        .await
        .map_err(StoreError::backend)?
}
