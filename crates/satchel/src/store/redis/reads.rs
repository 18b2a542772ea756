//! The plain reads of concurrent requests, sent to Redis together.
//!
//! A busy server has many requests reading their sessions at the same instant, each a
//! `GET` of its own. Sent one by one, each pays for a trip through the client (a message
//! to the connection's task, a reply channel, a timer) and for its share of the socket's
//! system calls, on both sides. So while other reads are under way, the first read that
//! finds no batch waiting leads one: it lets the runtime run the other requests that are
//! ready (one `yield_now`), whose reads join its batch, and then sends the batch as one
//! pipeline of `GET`s and hands each read its own reply. A read that starts while no other
//! is under way (a quiet server) goes at once as a plain `GET`, without the yield, and
//! so does a batch of one.
//!
//! A read never waits on a batch that cannot be sent: when the request leading a batch is
//! dropped before its pipeline is answered (its client went away), the reads that joined
//! it find their answer channel closed and go alone. Each key keeps its own outcome: a
//! key that holds another Redis type fails its read alone, as a `GET` would.
//!
//! Redis Cluster is left out: the keys of one batch would belong to many nodes.

use std::error::Error as StdError;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use redis::RedisResult;
use tokio::sync::oneshot;

use super::RedisStore;
use super::connection::{Request, wrong_type};
use crate::error::StoreError;
use crate::id::SessionId;

/// What one read gets: the value under its key, if any.
type Answer = Result<Option<Vec<u8>>, StoreError>;

/// The batch waiting to be sent, if any, and how many reads are under way.
#[derive(Default)]
pub(super) struct Reads {
    waiting: Mutex<Option<Vec<Waiting>>>,
    under_way: AtomicUsize,
}

struct Waiting {
    key: String,
    answer: oneshot::Sender<Answer>,
}

impl Reads {
    fn lock(&self) -> MutexGuard<'_, Option<Vec<Waiting>>> {
        // A batch is whole at every instant, so a poisoned lock is taken over.
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a read to the waiting batch; `true` when it starts one, and so leads it.
    fn join(&self, read: Waiting) -> bool {
        let mut waiting = self.lock();
        match waiting.as_mut() {
            Some(batch) => {
                batch.push(read);
                false
            }
            None => {
                *waiting = Some(vec![read]);
                true
            }
        }
    }
}

/// A read under way, counted while it lasts.
struct UnderWay<'a> {
    reads: &'a Reads,
    /// No other read was under way when this one started.
    alone: bool,
}

impl<'a> UnderWay<'a> {
    fn count(reads: &'a Reads) -> Self {
        let before = reads.under_way.fetch_add(1, Ordering::Relaxed);
        Self {
            reads,
            alone: before == 0,
        }
    }
}

impl Drop for UnderWay<'_> {
    fn drop(&mut self) {
        self.reads.under_way.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The lead of a batch: takes the batch to send it, or, dropped before (its request
/// went away), drops it, so that the reads that joined go alone.
struct Lead<'a> {
    reads: &'a Reads,
    taken: bool,
}

impl Lead<'_> {
    fn take(mut self) -> Vec<Waiting> {
        self.taken = true;
        self.reads.lock().take().unwrap_or_default()
    }
}

impl Drop for Lead<'_> {
    fn drop(&mut self) {
        if !self.taken {
            drop(self.reads.lock().take());
        }
    }
}

impl RedisStore {
    /// The value under the key of `id`, read with the reads of the requests ready at the same
    /// time (see the [module documentation](self)).
    pub(super) async fn read(&self, id: &SessionId) -> Answer {
        if !self.inner.backend.batches_reads() {
            return self.get(&self.key(id)).await;
        }
        let reads = &self.inner.reads;
        // Counted until this read ends.
        let under_way = UnderWay::count(reads);
        if under_way.alone {
            // No other read under way: none is likely to join, and the yield would only
            // cost.
            return self.get(&self.key(id)).await;
        }
        let (answer, answered) = oneshot::channel();
        let key = self.key(id);
        if reads.join(Waiting { key, answer }) {
            let lead = Lead {
                reads,
                taken: false,
            };
            tokio::task::yield_now().await;
            let batch = lead.take();
            self.send(batch).await;
        }
        match answered.await {
            Ok(answer) => answer,
            // The batch's lead was dropped before the batch was answered.
            Err(_) => self.get(&self.key(id)).await,
        }
    }

    /// One `GET`.
    async fn get(&self, key: &str) -> Answer {
        let mut command = redis::cmd("GET");
        command.arg(key);
        self.execute(Request::Command(&command)).await
    }

    /// Sends a batch, and answers each of its reads.
    async fn send(&self, mut batch: Vec<Waiting>) {
        if batch.len() == 1 {
            let read = batch.remove(0);
            let answer = self.get(&read.key).await;
            let _ = read.answer.send(answer);
            return;
        }
        let mut pipeline = redis::pipe();
        pipeline.ignore_errors();
        for read in &batch {
            pipeline.get(&read.key);
        }
        let replies: Result<Vec<RedisResult<Option<Vec<u8>>>>, StoreError> =
            self.execute(Request::Pipeline(&pipeline)).await;
        match replies {
            Ok(replies) if replies.len() == batch.len() => {
                for (read, reply) in batch.into_iter().zip(replies) {
                    let answer = reply.map_err(|error| {
                        if error.code() == Some("WRONGTYPE") {
                            wrong_type()
                        } else {
                            StoreError::backend(error)
                        }
                    });
                    let _ = read.answer.send(answer);
                }
            }
            Ok(_) => {
                for read in batch {
                    let _ = read.answer.send(Err(StoreError::backend(
                        "Redis answered a pipeline of reads with another number of replies",
                    )));
                }
            }
            Err(error) => {
                let shared = Arc::new(error);
                for read in batch {
                    let _ = read
                        .answer
                        .send(Err(StoreError::backend(Shared(Arc::clone(&shared)))));
                }
            }
        }
    }
}

/// The failure of a batch, given to each of its reads.
#[derive(Debug)]
struct Shared(Arc<StoreError>);

impl fmt::Display for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl StdError for Shared {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.0.source()
    }
}
