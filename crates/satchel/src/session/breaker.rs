//! The circuit breaker in front of the store, and the store the engine calls through it.
//!
//! Closed, every call goes to the store and the breaker counts the backend's failures in
//! a row. At SESSION_BREAKER_FAILURES it opens: for SESSION_BREAKER_COOLDOWN every call
//! fails at once with [`StoreError::CircuitOpen`], so requests get the failure answer
//! without waiting for the store's timeout. Then the first call goes through as a probe
//! while the others are still held back: its success closes the breaker, its failure
//! opens it for another cool-down. Health checks always reach the store, and their answer
//! counts like any other.
//!
//! Only [`StoreError::Backend`] counts as a failure (no answer, refused, timed out). A
//! corrupt entry is an answer, and an encoding error, a refused operation or a write given
//! up under contention ([`StoreError::Contended`]) or refused for its size
//! ([`StoreError::TooLarge`]) says nothing of the store's health.
//!
//! The state is three atomics, so a call through a closed breaker costs two loads.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use crate::error::StoreError;
use crate::id::SessionId;
use crate::observability;
use crate::record::{Changes, KeyUpdate, Record, Updated};
use crate::store::{BoxedStore, Capabilities, Page, Saved, Seen, SessionStore};

/// Where a circuit breaker stands, as [`Health`](crate::Health) reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BreakerState {
    /// Calls go to the store.
    Closed,
    /// Calls fail at once, until the cool-down ends.
    Open,
    /// The cool-down is over and one call is trying the store; the others still fail at
    /// once.
    Probing,
}

impl BreakerState {
    /// The state's name: `closed`, `open` or `probing`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(satchel::BreakerState::Open.as_str(), "open");
    /// ```
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::Probing => "probing",
        }
    }

    /// The value of the `satchel_breaker_state` gauge: 0 closed, 1 open, 2 probing.
    fn gauge(self) -> f64 {
        match self {
            Self::Closed => 0.0,
            Self::Open => 1.0,
            Self::Probing => 2.0,
        }
    }
}

/// The breaker's state.
struct Breaker {
    /// Failures in a row that open it.
    threshold: u32,
    cooldown: Duration,
    /// The store's name, for metrics and logs.
    store: &'static str,
    /// The time the instants below count from.
    epoch: Instant,
    /// Backend failures since the last success.
    failures: AtomicU32,
    /// `0` while closed; otherwise when the cool-down ends, in nanoseconds since `epoch`
    /// (at least 1).
    open_until: AtomicU64,
    /// A probe is trying the store.
    probing: AtomicBool,
}

/// What the breaker let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// An ordinary call through a closed breaker.
    Closed,
    /// The one call that tries the store once the cool-down is over; with the end of
    /// the cool-down it was let through after, so that a late probe of an earlier
    /// opening changes nothing of a later one.
    Probe(u64),
    /// A call made whatever the state (a health check).
    Always,
}

/// How a call's result counts.
enum Verdict {
    Success,
    Failure,
    /// Says nothing of the store's health.
    Neutral,
}

impl Verdict {
    fn of<T>(result: &Result<T, StoreError>) -> Self {
        match result {
            Ok(_) | Err(StoreError::Decode(_)) => Self::Success,
            Err(StoreError::Backend(_)) => Self::Failure,
            Err(_) => Self::Neutral,
        }
    }
}

impl Breaker {
    fn new(threshold: u32, cooldown: Duration, store: &'static str) -> Self {
        Self {
            threshold,
            cooldown,
            store,
            epoch: Instant::now(),
            failures: AtomicU32::new(0),
            open_until: AtomicU64::new(0),
            probing: AtomicBool::new(false),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    fn until(&self, from: u64) -> u64 {
        let cooldown = u64::try_from(self.cooldown.as_nanos()).unwrap_or(u64::MAX);
        from.saturating_add(cooldown)
    }

    fn state(&self) -> BreakerState {
        let until = self.open_until.load(Ordering::Acquire);
        if until == 0 {
            BreakerState::Closed
        } else if self.probing.load(Ordering::Acquire) {
            BreakerState::Probing
        } else {
            BreakerState::Open
        }
    }

    /// Lets a call through, or refuses it while the breaker is open.
    fn admit(&self) -> Result<Pass, StoreError> {
        let until = self.open_until.load(Ordering::Acquire);
        if until == 0 {
            return Ok(Pass::Closed);
        }
        if self.now() >= until
            && self
                .probing
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            let now = self.open_until.load(Ordering::Acquire);
            if now == until {
                self.publish(BreakerState::Probing);
                return Ok(Pass::Probe(until));
            }
            // Closed (or opened again) meanwhile: no probe of this opening is needed.
            self.probing.store(false, Ordering::Release);
            if now == 0 {
                return Ok(Pass::Closed);
            }
        }
        observability::breaker_rejected(self.store);
        Err(StoreError::CircuitOpen)
    }

    /// Counts a call's result.
    fn settle(&self, pass: Pass, verdict: &Verdict) {
        match verdict {
            Verdict::Success => {
                if self.failures.load(Ordering::Relaxed) != 0 {
                    self.failures.store(0, Ordering::Relaxed);
                }
                let was_open = self.open_until.swap(0, Ordering::AcqRel) != 0;
                if was_open || matches!(pass, Pass::Probe(_)) {
                    self.probing.store(false, Ordering::Release);
                }
                if was_open {
                    tracing::info!(
                        store = self.store,
                        "session store answers again: circuit breaker closed"
                    );
                    self.publish(BreakerState::Closed);
                }
            }
            Verdict::Failure => {
                let failures = self
                    .failures
                    .fetch_add(1, Ordering::Relaxed)
                    .saturating_add(1);
                // A probe opens again only the opening it was let through after.
                if let Pass::Probe(at) = pass
                    && self
                        .open_until
                        .compare_exchange(
                            at,
                            self.until(self.now()),
                            Ordering::AcqRel,
                            Ordering::Acquire,
                        )
                        .is_ok()
                {
                    self.probing.store(false, Ordering::Release);
                    tracing::debug!(
                        store = self.store,
                        "session store still fails: breaker open again"
                    );
                    self.publish(BreakerState::Open);
                } else if failures >= self.threshold
                    && self
                        .open_until
                        .compare_exchange(
                            0,
                            self.until(self.now()),
                            Ordering::AcqRel,
                            Ordering::Acquire,
                        )
                        .is_ok()
                {
                    tracing::warn!(
                        store = self.store,
                        failures,
                        cooldown_ms = u64::try_from(self.cooldown.as_millis()).unwrap_or(u64::MAX),
                        "session store failed {failures} times in a row: circuit breaker open"
                    );
                    self.publish(BreakerState::Open);
                }
            }
            Verdict::Neutral => {
                if let Pass::Probe(at) = pass {
                    self.release(at);
                }
            }
        }
    }

    /// Frees the place of a probe let through after the opening that ends at `at`,
    /// without a verdict, so that the next call tries the store; a probe of an earlier
    /// opening frees nothing.
    fn release(&self, at: u64) {
        if self.open_until.load(Ordering::Acquire) == at {
            self.probing.store(false, Ordering::Release);
            self.publish(self.state());
        }
    }

    fn publish(&self, state: BreakerState) {
        observability::breaker_state(self.store, state.gauge());
    }

    /// How long until the breaker lets a call try the store: the rest of the cool-down
    /// while open, a whole cool-down otherwise.
    fn retry_after(&self) -> Duration {
        let until = self.open_until.load(Ordering::Acquire);
        if until == 0 {
            return self.cooldown;
        }
        Duration::from_nanos(until.saturating_sub(self.now()))
    }
}

/// A call the breaker let through, until its result is counted. A probe dropped before
/// its call ends (the request went away) frees its place, so the next call probes.
struct Ticket<'a> {
    breaker: &'a Breaker,
    pass: Pass,
    settled: bool,
}

impl<'a> Ticket<'a> {
    fn new(breaker: &'a Breaker, pass: Pass) -> Self {
        Self {
            breaker,
            pass,
            settled: false,
        }
    }

    fn settle<T>(mut self, result: &Result<T, StoreError>) {
        self.settled = true;
        self.breaker.settle(self.pass, &Verdict::of(result));
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if let (false, Pass::Probe(at)) = (self.settled, self.pass) {
            self.breaker.release(at);
        }
    }
}

/// Runs a call the breaker let through, and counts its result.
async fn through<T>(
    ticket: Ticket<'_>,
    call: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    let result = call.await;
    ticket.settle(&result);
    result
}

/// The store as the engine calls it: behind the breaker, when there is one.
pub(crate) struct Guarded {
    store: BoxedStore,
    breaker: Option<Breaker>,
}

impl Guarded {
    /// `store` behind a breaker that opens after `failures` in a row (none when `0`).
    pub(crate) fn new(store: BoxedStore, failures: usize, cooldown: Duration) -> Self {
        let breaker = (failures > 0).then(|| {
            let threshold = u32::try_from(failures).unwrap_or(u32::MAX);
            let breaker = Breaker::new(threshold, cooldown, store.name());
            breaker.publish(BreakerState::Closed);
            breaker
        });
        Self { store, breaker }
    }

    /// The store itself, without the breaker.
    pub(crate) fn inner(&self) -> &BoxedStore {
        &self.store
    }

    /// Where the breaker stands; `None` without one.
    pub(crate) fn breaker_state(&self) -> Option<BreakerState> {
        self.breaker.as_ref().map(Breaker::state)
    }

    /// Sets the breaker's gauge to where it stands (for a recorder installed after the
    /// breaker was made), and says where that is.
    pub(crate) fn publish_breaker(&self) -> Option<BreakerState> {
        self.breaker.as_ref().map(|breaker| {
            let state = breaker.state();
            breaker.publish(state);
            state
        })
    }

    /// How long until the store is tried again, for `Retry-After`: the rest of an open
    /// breaker's cool-down, else a whole one (a second without a breaker).
    pub(crate) fn retry_after(&self) -> Duration {
        self.breaker
            .as_ref()
            .map_or(Duration::from_secs(1), Breaker::retry_after)
    }
}

/// Runs one store call of `$guarded` (a [`Guarded`]) behind its breaker: refused at once
/// while the breaker is open, counted once it ends. Written out in each method rather
/// than as a function, so the call adds no state machine of its own to the request's
/// future.
macro_rules! guarded {
    ($guarded:expr, $call:expr) => {
        match &$guarded.breaker {
            None => $call.await,
            Some(breaker) => {
                let ticket = Ticket::new(breaker, breaker.admit()?);
                let result = $call.await;
                ticket.settle(&result);
                result
            }
        }
    };
}

impl SessionStore for Guarded {
    async fn load(
        &self,
        id: &SessionId,
        touch: Option<SystemTime>,
    ) -> Result<Option<Record>, StoreError> {
        guarded!(self, self.store.load(id, touch))
    }

    async fn save(
        &self,
        id: &SessionId,
        changes: &Changes,
        expires_at: SystemTime,
    ) -> Result<Saved, StoreError> {
        guarded!(self, self.store.save(id, changes, expires_at))
    }

    async fn save_seen(
        &self,
        id: &SessionId,
        seen: Seen<'_>,
        changes: &Changes,
        expires_at: SystemTime,
    ) -> Result<Saved, StoreError> {
        guarded!(self, self.store.save_seen(id, seen, changes, expires_at))
    }

    async fn cycle(
        &self,
        old: &SessionId,
        new: &SessionId,
        changes: &Changes,
        expires_at: SystemTime,
    ) -> Result<Saved, StoreError> {
        guarded!(self, self.store.cycle(old, new, changes, expires_at))
    }

    async fn update(
        &self,
        id: &SessionId,
        key: &str,
        update: &KeyUpdate,
    ) -> Result<Updated, StoreError> {
        guarded!(self, self.store.update(id, key, update))
    }

    async fn update_and_load(
        &self,
        id: &SessionId,
        key: &str,
        update: &KeyUpdate,
    ) -> Result<(Updated, Option<Record>), StoreError> {
        guarded!(self, self.store.update_and_load(id, key, update))
    }

    async fn delete(&self, id: &SessionId) -> Result<(), StoreError> {
        guarded!(self, self.store.delete(id))
    }

    fn capabilities(&self) -> Capabilities {
        self.store.capabilities()
    }

    fn name(&self) -> &'static str {
        self.store.name()
    }

    /// Always asks the store, whatever the breaker's state; the answer counts.
    async fn ping(&self) -> Result<(), StoreError> {
        match &self.breaker {
            Some(breaker) => through(Ticket::new(breaker, Pass::Always), self.store.ping()).await,
            None => self.store.ping().await,
        }
    }

    async fn list(&self, cursor: Option<&str>, limit: usize) -> Result<Page, StoreError> {
        guarded!(self, self.store.list(cursor, limit))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn failed() -> Result<(), StoreError> {
        Err(StoreError::backend("down"))
    }

    #[test]
    fn opens_after_the_threshold_and_a_probe_decides() {
        let breaker = Breaker::new(3, Duration::from_millis(40), "test");
        for _ in 0..2 {
            let pass = breaker.admit().unwrap();
            breaker.settle(pass, &Verdict::of(&failed()));
        }
        assert_eq!(breaker.state(), BreakerState::Closed, "2 of 3 failures");
        let pass = breaker.admit().unwrap();
        breaker.settle(pass, &Verdict::of(&failed()));
        assert_eq!(breaker.state(), BreakerState::Open);
        assert!(matches!(breaker.admit(), Err(StoreError::CircuitOpen)));
        assert!(breaker.retry_after() <= Duration::from_millis(40));

        std::thread::sleep(Duration::from_millis(50));
        let probe = breaker.admit().unwrap();
        assert!(matches!(probe, Pass::Probe(_)));
        assert_eq!(breaker.state(), BreakerState::Probing);
        assert!(
            matches!(breaker.admit(), Err(StoreError::CircuitOpen)),
            "one probe at a time"
        );
        breaker.settle(probe, &Verdict::of(&failed()));
        assert_eq!(
            breaker.state(),
            BreakerState::Open,
            "a failed probe opens it again"
        );
        assert!(matches!(breaker.admit(), Err(StoreError::CircuitOpen)));

        std::thread::sleep(Duration::from_millis(50));
        let probe = breaker.admit().unwrap();
        breaker.settle(probe, &Verdict::of(&Ok::<_, StoreError>(())));
        assert_eq!(breaker.state(), BreakerState::Closed);
        assert_eq!(breaker.admit().unwrap(), Pass::Closed);
    }

    #[test]
    fn a_success_resets_the_count_and_corrupt_entries_do_not_count() {
        let breaker = Breaker::new(2, Duration::from_secs(60), "test");
        let corrupt: Result<(), StoreError> = Err(StoreError::decode("bad bytes"));
        let contended: Result<(), StoreError> = Err(StoreError::Contended("busy".into()));
        let too_large: Result<(), StoreError> = Err(StoreError::TooLarge { budget: 1, size: 2 });
        for result in [
            failed(),
            Ok(()),
            failed(),
            corrupt,
            failed(),
            too_large,
            contended,
        ] {
            let pass = breaker.admit().unwrap();
            breaker.settle(pass, &Verdict::of(&result));
        }
        assert_eq!(breaker.state(), BreakerState::Closed, "never two in a row");
        let pass = breaker.admit().unwrap();
        breaker.settle(pass, &Verdict::of(&failed()));
        assert_eq!(breaker.state(), BreakerState::Open);
    }

    #[tokio::test]
    async fn a_dropped_probe_frees_its_place() {
        let store = Guarded::new(
            BoxedStore::new(crate::MemoryStore::default()),
            1,
            Duration::ZERO,
        );
        let breaker = store.breaker.as_ref().unwrap();
        let pass = breaker.admit().unwrap();
        breaker.settle(pass, &Verdict::of(&failed()));
        assert_eq!(breaker.state(), BreakerState::Open);
        let pass = breaker.admit().unwrap();
        assert!(matches!(pass, Pass::Probe(_)));
        // The request goes away while its probe waits for the store.
        let probe = through(
            Ticket::new(breaker, pass),
            std::future::pending::<Result<(), StoreError>>(),
        );
        drop(probe);
        assert_eq!(breaker.state(), BreakerState::Open);
        assert!(
            matches!(breaker.admit().unwrap(), Pass::Probe(_)),
            "the next call probes"
        );
    }

    #[test]
    fn a_late_probe_of_an_earlier_opening_leaves_the_next_one_alone() {
        let breaker = Breaker::new(1, Duration::ZERO, "test");
        let pass = breaker.admit().unwrap();
        breaker.settle(pass, &Verdict::of(&failed()));
        let first = breaker.admit().unwrap();
        assert!(matches!(first, Pass::Probe(_)));
        // A health check closes the breaker, a failure opens it again, a new probe goes.
        breaker.settle(Pass::Always, &Verdict::of(&Ok::<_, StoreError>(())));
        breaker.settle(Pass::Closed, &Verdict::of(&failed()));
        std::thread::sleep(Duration::from_millis(2));
        let second = breaker.admit().unwrap();
        assert!(matches!(second, Pass::Probe(_)));
        assert_ne!(first, second);
        // The first probe fails late: the second keeps its place, and no third goes.
        breaker.settle(first, &Verdict::of(&failed()));
        assert_eq!(breaker.state(), BreakerState::Probing);
        assert!(matches!(breaker.admit(), Err(StoreError::CircuitOpen)));
        breaker.settle(second, &Verdict::of(&Ok::<_, StoreError>(())));
        assert_eq!(breaker.state(), BreakerState::Closed);
    }

    #[tokio::test]
    async fn health_checks_reach_the_store_and_close_the_breaker() {
        let store = Guarded::new(
            BoxedStore::new(crate::MemoryStore::default()),
            1,
            Duration::from_secs(60),
        );
        let breaker = store.breaker.as_ref().unwrap();
        let pass = breaker.admit().unwrap();
        breaker.settle(pass, &Verdict::of(&failed()));
        let id = SessionId::generate();
        assert!(matches!(
            store.load(&id, None).await,
            Err(StoreError::CircuitOpen)
        ));
        store.ping().await.unwrap();
        assert_eq!(store.breaker_state(), Some(BreakerState::Closed));
        assert!(store.load(&id, None).await.unwrap().is_none());
    }
}
