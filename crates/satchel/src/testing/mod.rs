//! The public store conformance suite: every store, Satchel's own and anyone else's,
//! passes the same cases.
//!
//! Each case in [`cases`] is an `async fn` taking a store; [`conformance!`](crate::conformance)
//! turns the whole list into one `#[tokio::test]` per case for a store, so a failure
//! names both the store and the case:
//!
//! ```
//! satchel::conformance!(memory, async { Some(satchel::MemoryStore::default()) });
//! # fn main() {}
//! ```
//!
//! The factory returns `None` when the store's server is not available: the tests then
//! print why and pass locally, but [`service_unavailable`] makes them fail under `CI=true`,
//! so a CI run can never skip a store silently.

pub mod cases;

/// Reports that a test's service is missing: `None` after printing why, or a panic when
/// the `CI` environment variable is `true`, where every service must be there.
///
/// # Panics
///
/// Panics under `CI=true`: a store test must not skip in CI.
///
/// # Examples
///
/// ```
/// # fn check() -> Option<()> {
/// let url = std::env::var("SOME_SERVICE_URL").ok().or_else(|| {
///     satchel::testing::service_unavailable("some service", "SOME_SERVICE_URL is unset")
/// })?;
/// # let _ = url; Some(()) }
/// ```
pub fn service_unavailable<T>(service: &str, why: &str) -> Option<T> {
    let ci = std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
    assert!(!ci, "{service} is required in CI but unavailable: {why}");
    eprintln!("skipping: {service} unavailable: {why}");
    None
}

/// `store` with its values sealed at rest under a fixed test key (see
/// [`store::sealed`](crate::store::sealed)), for running the conformance suite on the
/// sealed form of a store.
///
/// # Examples
///
/// ```
/// satchel::conformance!(sealed_memory, async {
///     satchel::testing::sealed(Some(satchel::MemoryStore::default()))
/// });
/// # fn main() {}
/// ```
#[cfg(feature = "sealed")]
#[must_use]
pub fn sealed<S: crate::SessionStore>(
    store: Option<S>,
) -> Option<crate::store::sealed::SealedStore<S>> {
    use crate::store::sealed::{DataKey, SealedStore};
    let key = DataKey::derive(b"the data key of satchel's conformance suite");
    store.map(|store| SealedStore::new(store, key, []))
}

/// Generates one `#[tokio::test]` per conformance case for a store.
///
/// `$store` is an expression giving a future of `Option<S>` (where `S: SessionStore +
/// Clone`); `None` skips, see [`service_unavailable`]. It is evaluated once per case, so
/// each case gets a fresh store (or a fresh connection to a shared server: cases use
/// fresh random ids and never interfere).
#[macro_export]
macro_rules! conformance {
    ($name:ident, $store:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            $crate::conformance!(@cases $store;
                missing_entry_loads_as_none,
                saved_data_round_trips,
                changes_apply_onto_the_latest_entry,
                removals_and_clear_apply,
                a_save_that_leaves_nothing_deletes_the_entry,
                delete_removes_the_entry,
                expired_entries_are_not_loaded,
                touch_extends_the_lifetime_without_changing_data,
                the_permanent_flag_is_stored,
                the_creation_time_and_lifetime_are_stored,
                cycle_moves_the_entry_to_the_new_id,
                concurrent_saves_keep_every_key,
                large_change_sets_apply_whole,
                sessions_do_not_leak_into_each_other,
                a_save_from_a_stale_version_loses_nothing,
                a_save_from_the_current_version_writes_the_request_data,
                changes_for_a_loaded_entry_never_recreate_it,
                concurrent_increments_all_land,
                updates_apply_or_refuse_as_specified,
                an_update_answers_the_entry_it_left,
                an_emptied_entry_takes_no_later_changes,
                fifty_concurrent_bindings_are_all_indexed,
                removed_members_leave_the_index,
                listing_pages_through_every_entry_once,
                pruning_an_index_drops_dead_members_only,
                ping_answers_while_the_store_works,
                a_save_over_the_budget_is_refused_and_writes_nothing,
                a_concurrent_merge_that_crosses_the_budget_is_refused,
            );
        }
    };
    (@cases $store:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(store) = $store.await else { return };
                $crate::testing::cases::$case(store).await;
            }
        )*
    };
}

/// `store` holding its sessions in Flask-Session's msgpack layout (see
/// [`flask`](crate::flask)), for running the conformance suite on it. Sessions that never
/// chose are written without `_permanent`, so the suite reads back what it wrote.
///
/// # Examples
///
/// ```no_run
/// // Not run: it needs a Redis server.
/// satchel::conformance!(flask_redis, async {
///     let redis = satchel::RedisStore::connect("redis://127.0.0.1:6379").await.ok();
///     satchel::testing::flask(redis)
/// });
/// # fn main() {}
/// ```
#[cfg(feature = "flask")]
#[must_use]
pub fn flask<B: crate::flask::FlaskBackend>(
    store: Option<B>,
) -> Option<crate::flask::FlaskStore<B>> {
    use crate::flask::FlaskStore;
    store.map(|store| {
        FlaskStore::new(store, crate::FlaskCompat::Msgpack).permanent_by_default(false)
    })
}
