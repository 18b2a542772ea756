//! The SQL stores on real databases: SQLite (a file and `sqlite::memory:`), and the
//! PostgreSQL and MariaDB servers `source scripts/services.sh` starts
//! (SATCHEL_TEST_POSTGRES_URL, SATCHEL_TEST_MYSQL_URL), plus private PostgreSQL and
//! MariaDB servers that the restart tests start and stop themselves.

#![cfg(all(
    feature = "sqlite",
    feature = "postgres",
    feature = "mysql",
    feature = "testing",
    feature = "axum",
    feature = "signed"
))]
#![allow(clippy::unwrap_used)]

mod common;
mod scenarios;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use common::free_port;
use satchel::store::sql::{SqlOptions, SqlStore, TableMapping};
use satchel::store::{BoxedStore, Saved};
use satchel::{
    Changes, ConfigError, ExpiredDeletion, MySqlStore, PostgresStore, SessionConfig, SessionId,
    SessionStore, SessionType, SqliteStore, StoreError,
};
use scenarios::axum_app::Axum;
use scenarios::{App, Browser, Harness};
use serde_json::json;
use sqlx::{MySqlPool, PgPool, SqlitePool};

/// The table the conformance suite and the scenarios share (their ids are random).
const TABLE: &str = "satchel_sql_test";
/// Their key prefix.
const PREFIX: &str = "satchel-test:";

fn options() -> SqlOptions {
    SqlOptions::default()
        .with_mapping(TableMapping::new(TABLE).unwrap())
        .with_key_prefix(PREFIX)
}

/// The store timeout of the tests where 50 requests write one row at once: the writes
/// queue on the row's lock, so the last one waits for all the others.
const RACE_TIMEOUT: Duration = Duration::from_secs(30);

/// A table name no other test (or run) uses.
fn unique(base: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{base}_{}_{n}_{nanos}", std::process::id())
}

fn in_secs(secs: i64) -> SystemTime {
    if secs >= 0 {
        SystemTime::now() + Duration::from_secs(secs.unsigned_abs())
    } else {
        SystemTime::now() - Duration::from_secs(secs.unsigned_abs())
    }
}

fn millis(at: SystemTime) -> i64 {
    i64::try_from(
        at.duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

fn setting(pairs: &[(&str, serde_json::Value)]) -> Changes {
    let mut changes = Changes::default();
    for (key, value) in pairs {
        changes.set(*key, value.clone());
    }
    changes
}

/// The SQLite file all file-backed tests share.
fn sqlite_file_url() -> String {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    let dir = DIR.get_or_init(|| tempfile::tempdir().unwrap());
    format!("sqlite://{}", dir.path().join("sessions.db").display())
}

fn env_url(variable: &str, service: &str) -> Option<String> {
    match std::env::var(variable) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => satchel::testing::service_unavailable(
            service,
            &format!("{variable} is unset (source scripts/services.sh)"),
        ),
    }
}

fn postgres_url() -> Option<String> {
    env_url("SATCHEL_TEST_POSTGRES_URL", "PostgreSQL")
}

fn mysql_url() -> Option<String> {
    env_url("SATCHEL_TEST_MYSQL_URL", "MariaDB")
}

async fn sqlite_file_store() -> Option<SqliteStore> {
    Some(
        SqliteStore::connect(&sqlite_file_url(), options())
            .await
            .unwrap(),
    )
}

async fn sqlite_memory_store() -> Option<SqliteStore> {
    Some(
        SqliteStore::connect("sqlite::memory:", options())
            .await
            .unwrap(),
    )
}

async fn postgres_store() -> Option<PostgresStore> {
    Some(
        PostgresStore::connect(&postgres_url()?, options())
            .await
            .unwrap(),
    )
}

async fn mysql_store() -> Option<MySqlStore> {
    Some(MySqlStore::connect(&mysql_url()?, options()).await.unwrap())
}

satchel::conformance!(conformance_sqlite_file, sqlite_file_store());
satchel::conformance!(conformance_sqlite_memory, sqlite_memory_store());
satchel::conformance!(conformance_postgres, postgres_store());
satchel::conformance!(conformance_mariadb, mysql_store());
/// A SQL store in Flask-Session's layout, on the table `flask_compat_sessions` (made
/// when missing, as Flask-Session's model makes it).
#[cfg(feature = "flask")]
async fn flask_store(url: Option<String>) -> Option<satchel::flask::FlaskStore<SqlStore>> {
    let options = SqlOptions::default()
        .with_mapping(TableMapping::new("flask_compat_sessions").unwrap())
        .with_key_prefix(PREFIX)
        .with_auto_migrate(false);
    let store = SqlStore::connect(&url?, options).await.unwrap();
    store.create_flask_table().await.unwrap();
    satchel::testing::flask(Some(store))
}
#[cfg(feature = "flask")]
satchel::conformance!(
    flask_conformance_sqlite,
    flask_store(Some(sqlite_file_url()))
);
#[cfg(feature = "flask")]
satchel::conformance!(flask_conformance_postgres, flask_store(postgres_url()));
#[cfg(feature = "flask")]
satchel::conformance!(flask_conformance_mariadb, flask_store(mysql_url()));
#[cfg(feature = "sealed")]
satchel::conformance!(sealed_conformance_sqlite, async {
    satchel::testing::sealed(sqlite_file_store().await)
});
#[cfg(feature = "sealed")]
satchel::conformance!(sealed_conformance_postgres, async {
    satchel::testing::sealed(postgres_store().await)
});
#[cfg(feature = "sealed")]
satchel::conformance!(sealed_conformance_mariadb, async {
    satchel::testing::sealed(mysql_store().await)
});

mod scenarios_sqlite_file {
    use super::*;
    scenarios!(Axum, sqlite_file_store());
}

mod scenarios_sqlite_memory {
    use super::*;
    scenarios!(Axum, sqlite_memory_store());
}

mod scenarios_postgres {
    use super::*;
    scenarios!(Axum, postgres_store());
}

mod scenarios_mariadb {
    use super::*;
    scenarios!(Axum, mysql_store());
}

/// Where a store-specific case runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    SqliteFile,
    SqliteMemory,
    Postgres,
    MariaDb,
}

/// Plain SQL on a store's database, for looking behind the store's back.
#[derive(Debug, Clone)]
enum Raw {
    Sqlite(SqlitePool),
    Postgres(PgPool),
    MySql(MySqlPool),
}

impl Raw {
    fn quote(&self, name: &str) -> String {
        match self {
            Self::Postgres(_) => format!("\"{name}\""),
            _ => format!("`{name}`"),
        }
    }

    /// The bind parameter `n` (from 1).
    fn param(&self, n: usize) -> String {
        match self {
            Self::MySql(_) => "?".to_owned(),
            _ => format!("${n}"),
        }
    }

    async fn exec(&self, sql: &str) {
        match self {
            Self::Sqlite(pool) => drop(sqlx::raw_sql(sql).execute(pool).await.unwrap()),
            Self::Postgres(pool) => drop(sqlx::raw_sql(sql).execute(pool).await.unwrap()),
            Self::MySql(pool) => drop(sqlx::raw_sql(sql).execute(pool).await.unwrap()),
        }
    }

    async fn count(&self, sql: &str) -> i64 {
        match self {
            Self::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
            Self::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
            Self::MySql(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
        }
    }

    /// `(data, expiry, version)` of the row `key` in the default layout of `table`.
    async fn row(&self, table: &str, key: &str) -> Option<(Vec<u8>, i64, i64)> {
        let sql = format!(
            "SELECT {}, {}, {} FROM {} WHERE {} = {}",
            self.quote("data"),
            self.quote("expiry"),
            self.quote("version"),
            self.quote(table),
            self.quote("id"),
            self.param(1)
        );
        match self {
            Self::Sqlite(pool) => sqlx::query_as(&sql).bind(key).fetch_optional(pool).await,
            Self::Postgres(pool) => sqlx::query_as(&sql).bind(key).fetch_optional(pool).await,
            Self::MySql(pool) => sqlx::query_as(&sql).bind(key).fetch_optional(pool).await,
        }
        .unwrap()
    }

    /// Inserts `count` rows into the default layout of `table`, expiring at `expiry`.
    async fn fill(&self, table: &str, count: usize, expiry: i64) {
        let tag = unique("fill");
        for chunk in (0..count).collect::<Vec<_>>().chunks(500) {
            let values: Vec<String> = chunk
                .iter()
                .map(|n| format!("('{tag}-{n}', {}, {expiry}, 1)", self.blob()))
                .collect();
            self.exec(&format!(
                "INSERT INTO {} VALUES {}",
                self.quote(table),
                values.join(", ")
            ))
            .await;
        }
    }

    /// A blob literal holding two bytes that are not a session.
    fn blob(&self) -> &'static str {
        match self {
            Self::Postgres(_) => "'\\x0102'::bytea",
            _ => "X'0102'",
        }
    }

    async fn drop_table(&self, table: &str) {
        self.exec(&format!("DROP TABLE IF EXISTS {}", self.quote(table)))
            .await;
    }
}

/// A store on `target` with `options`, and plain SQL on its database.
async fn open(target: Target, options: SqlOptions) -> Option<(SqlStore, Raw)> {
    Some(match target {
        Target::SqliteFile | Target::SqliteMemory => {
            let url = match target {
                Target::SqliteFile => sqlite_file_url(),
                _ => "sqlite::memory:".to_owned(),
            };
            let store = SqliteStore::connect(&url, options).await.unwrap();
            let raw = Raw::Sqlite(store.pool().clone());
            (SqlStore::Sqlite(store), raw)
        }
        Target::Postgres => {
            let store = PostgresStore::connect(&postgres_url()?, options)
                .await
                .unwrap();
            let raw = Raw::Postgres(store.pool().clone());
            (SqlStore::Postgres(store), raw)
        }
        Target::MariaDb => {
            let store = MySqlStore::connect(&mysql_url()?, options).await.unwrap();
            let raw = Raw::MySql(store.pool().clone());
            (SqlStore::MySql(store), raw)
        }
    })
}

/// A store on `target` in a table of its own (to drop at the end), with `options`.
async fn open_own(target: Target, options: SqlOptions) -> Option<(SqlStore, Raw, String)> {
    let table = unique("satchel_t");
    let options = options.with_mapping(TableMapping::new(&table).unwrap());
    let (store, raw) = open(target, options).await?;
    Some((store, raw, table))
}

/// Store-specific cases, each run on every target by [`per_target!`].
mod cases {
    use super::*;

    /// A store of 100,000 sessions (and one more saved by the store itself) pages
    /// through all of them exactly once, 1,000 a page.
    pub(crate) async fn a_store_of_100000_sessions_lists_each_once(target: Target) {
        let Some((store, raw, table)) = open_own(target, options()).await else {
            return;
        };
        let seed = SessionId::generate();
        store
            .save(&seed, &setting(&[("k", json!(1))]), in_secs(3600))
            .await
            .unwrap();
        let (data, expiry, _) = raw.row(&table, &format!("{PREFIX}{seed}")).await.unwrap();
        let hex: String = data.iter().map(|byte| format!("{byte:02X}")).collect();
        let blob = match raw {
            Raw::Postgres(_) => format!("'\\x{hex}'::bytea"),
            _ => format!("X'{hex}'"),
        };
        let ids: Vec<SessionId> = (0..100_000).map(|_| SessionId::generate()).collect();
        for chunk in ids.chunks(1000) {
            let values: Vec<String> = chunk
                .iter()
                .map(|id| format!("('{PREFIX}{id}', {blob}, {expiry}, 1)"))
                .collect();
            raw.exec(&format!(
                "INSERT INTO {} VALUES {}",
                raw.quote(&table),
                values.join(", ")
            ))
            .await;
        }
        let (entries, pages) = satchel::testing::cases::walk(&store, 1000).await;
        let listed: Vec<SessionId> = entries
            .into_iter()
            .map(|(id, record)| {
                assert_eq!(record.data.get("k"), Some(&json!(1)));
                id
            })
            .collect();
        let unique: std::collections::BTreeSet<SessionId> = listed.iter().copied().collect();
        eprintln!(
            "{target:?}: {} sessions listed in {pages} pages",
            listed.len()
        );
        assert_eq!(unique.len(), listed.len(), "a session listed twice");
        let mut expected: std::collections::BTreeSet<SessionId> = ids.into_iter().collect();
        expected.insert(seed);
        assert_eq!(unique, expected);
        raw.drop_table(&table).await;
    }

    /// Nothing in the table holds a session's id after a log-in: every row's key and
    /// data name the session by the hash of its id.
    pub(crate) async fn no_session_id_is_stored_in_the_table(target: Target) {
        at_rest_in_the_table(target, false).await;
    }

    /// With SESSION_DATA_KEY, no row holds a session value in the clear.
    pub(crate) async fn session_values_are_sealed_in_the_table(target: Target) {
        at_rest_in_the_table(target, true).await;
    }

    async fn at_rest_in_the_table(target: Target, sealed: bool) {
        let Some((store, raw, table)) = open_own(target, options()).await else {
            return;
        };
        let sql = format!(
            "SELECT {}, {} FROM {} ORDER BY {}",
            raw.quote("id"),
            raw.quote("data"),
            raw.quote(&table),
            raw.quote("id")
        );
        let dump = || async {
            let rows: Vec<(String, Vec<u8>)> = match &raw {
                Raw::Sqlite(pool) => sqlx::query_as(&sql).fetch_all(pool).await.unwrap(),
                Raw::Postgres(pool) => sqlx::query_as(&sql).fetch_all(pool).await.unwrap(),
                // MySQL keeps the key as VARBINARY, compared byte for byte.
                Raw::MySql(pool) => {
                    let rows: Vec<(Vec<u8>, Vec<u8>)> =
                        sqlx::query_as(&sql).fetch_all(pool).await.unwrap();
                    rows.into_iter()
                        .map(|(id, data)| (String::from_utf8_lossy(&id).into_owned(), data))
                        .collect()
                }
            };
            rows.iter()
                .map(|(id, data)| format!("{id} -> {}\n", String::from_utf8_lossy(data)))
                .collect()
        };
        scenarios::at_rest(BoxedStore::new(store), sealed, dump).await;
        raw.drop_table(&table).await;
    }

    pub(crate) async fn cleanup_removes_expired_rows_and_counts_them(target: Target) {
        let Some((store, raw, table)) = open_own(target, options()).await else {
            return;
        };
        satchel::testing::cases::cleanup_removes_expired_entries_and_counts_them(store).await;
        raw.drop_table(&table).await;
    }

    pub(crate) async fn fifty_concurrent_requests_keep_all_fifty_keys(target: Target) {
        // As for two stores below: the writes to one row take turns.
        let Some((store, _)) = open(target, options().with_timeout(RACE_TIMEOUT)).await else {
            return;
        };
        let app = App::new(store, SessionConfig::default());
        let kept = scenarios::race(&Axum, &app).await;
        eprintln!("race on {target:?}: {kept} of 50 keys kept");
        assert_eq!(kept, 50);
    }

    pub(crate) async fn two_stores_on_one_database_keep_every_key(target: Target) {
        if target == Target::SqliteMemory {
            return; // one private database per store: nothing to share
        }
        // 50 writes to one row take turns, and the last waits for the 49 others: the
        // default timeout would make this a test of the machine's speed, not of keys kept.
        let options = || options().with_timeout(RACE_TIMEOUT);
        let Some((a, _)) = open(target, options()).await else {
            return;
        };
        let (b, _) = open(target, options()).await.unwrap();
        let (a, b) = (
            App::new(a, SessionConfig::default()),
            App::new(b, SessionConfig::default()),
        );
        let mut browser = Browser::new(&Axum, &a);
        browser.post("/login?uid=12").await;
        let cookie = format!("session={}", browser.cookie.clone().unwrap());
        assert_eq!(
            Axum.request(&b, "GET", "/read", Some(&cookie)).await.body,
            "12"
        );
        let requests = (0..50).map(|i| {
            let (cookie, app) = (cookie.clone(), if i % 2 == 0 { &a } else { &b });
            async move {
                Axum.request(app, "POST", &format!("/set/k{i}"), Some(&cookie))
                    .await
            }
        });
        let replies = scenarios::join_all(requests).await;
        assert!(
            replies.iter().all(|r| r.status == 200),
            "{:?}",
            replies
                .iter()
                .map(|r| (r.status, r.body.clone()))
                .collect::<Vec<_>>()
        );
        let keys = Axum.request(&a, "GET", "/count-keys", Some(&cookie)).await;
        assert_eq!(keys.body, "52", "user_id, n and all fifty keys");
    }

    /// Two servers (two stores, each with its own pool) on one fresh table create 48
    /// sessions at once: new sessions, and id rotations from ids that have no row. At
    /// MySQL's default isolation each locking read of a missing row locked the gap where
    /// the row would go (in an empty table, one gap for every key), so the inserts
    /// deadlocked on each other's gaps until saves gave up.
    pub(crate) async fn two_stores_create_sessions_in_one_fresh_table_at_once(target: Target) {
        if target == Target::SqliteMemory {
            return; // one private database per store: nothing to share
        }
        for _ in 0..3 {
            let Some((a, raw, table)) = open_own(target, options()).await else {
                return;
            };
            let mapping = TableMapping::new(&table).unwrap();
            let (b, _) = open(target, options().with_mapping(mapping)).await.unwrap();
            let start = Arc::new(tokio::sync::Barrier::new(48));
            let tasks: Vec<_> = (0..48_usize)
                .map(|n| {
                    let store = if n % 2 == 0 { a.clone() } else { b.clone() };
                    let start = Arc::clone(&start);
                    tokio::spawn(async move {
                        let (old, new) = (SessionId::generate(), SessionId::generate());
                        let changes = setting(&[("n", json!(n))]);
                        start.wait().await;
                        if n % 4 < 2 {
                            (old, store.save(&old, &changes, in_secs(60)).await)
                        } else {
                            // A log-in's id rotation, from an id that has no row.
                            (new, store.cycle(&old, &new, &changes, in_secs(60)).await)
                        }
                    })
                })
                .collect();
            let mut failures = Vec::new();
            for (n, task) in tasks.into_iter().enumerate() {
                let (id, saved) = task.await.unwrap();
                match saved {
                    Ok(saved) => {
                        assert_eq!(saved, Saved::Stored);
                        let record = a.load(&id, None).await.unwrap().unwrap();
                        assert_eq!(record.data.get("n"), Some(&json!(n)));
                    }
                    Err(error) => failures.push(format!("{n}: {error:?}")),
                }
            }
            assert!(
                failures.is_empty(),
                "{} of 48 saves failed: {failures:#?}",
                failures.len()
            );
            let rows = raw
                .count(&format!("SELECT COUNT(*) FROM {}", raw.quote(&table)))
                .await;
            assert_eq!(rows, 48);
            raw.drop_table(&table).await;
        }
    }

    pub(crate) async fn the_key_prefix_is_applied(target: Target) {
        let Some((store, raw)) = open(target, options().with_key_prefix("app-a:")).await else {
            return;
        };
        let (other, _) = open(target, options().with_key_prefix("app-b:"))
            .await
            .unwrap();
        let other = match (target, other) {
            // In memory each store has its own database: share the first one's.
            (Target::SqliteMemory, _) => {
                let Raw::Sqlite(pool) = &raw else {
                    unreachable!()
                };
                let options = options().with_key_prefix("app-b:");
                SqlStore::Sqlite(SqliteStore::from_pool(pool.clone(), options).await.unwrap())
            }
            (_, other) => other,
        };
        let id = SessionId::generate();
        store
            .save(&id, &setting(&[("a", json!(1))]), in_secs(60))
            .await
            .unwrap();
        assert!(raw.row(TABLE, &format!("app-a:{id}")).await.is_some());
        assert!(raw.row(TABLE, &id.to_string()).await.is_none());
        assert!(other.load(&id, None).await.unwrap().is_none());
        other
            .save(&id, &setting(&[("b", json!(2))]), in_secs(60))
            .await
            .unwrap();
        let mine = store.load(&id, None).await.unwrap().unwrap();
        assert_eq!(mine.data.keys().collect::<Vec<_>>(), ["a"]);
    }

    pub(crate) async fn a_touch_changes_neither_data_nor_version(target: Target) {
        let Some((store, raw)) = open(target, options()).await else {
            return;
        };
        let id = SessionId::generate();
        let key = format!("{PREFIX}{id}");
        store
            .save(&id, &setting(&[("a", json!(1))]), in_secs(60))
            .await
            .unwrap();
        let (data, expiry, version) = raw.row(TABLE, &key).await.unwrap();
        let later = in_secs(3_600);
        let record = store.load(&id, Some(later)).await.unwrap().unwrap();
        assert_eq!(record.version, Some(version.cast_unsigned()));
        assert_eq!(millis(record.expires_at), millis(later));
        let (data_after, expiry_after, version_after) = raw.row(TABLE, &key).await.unwrap();
        assert_eq!(data_after, data, "the data was not rewritten");
        assert_eq!(version_after, version, "the version did not move");
        assert_eq!(expiry_after, millis(later));
        assert!(expiry_after > expiry);

        // A touch to an earlier time does not shorten the lifetime.
        let record = store.load(&id, Some(in_secs(10))).await.unwrap().unwrap();
        assert_eq!(millis(record.expires_at), millis(later));
        assert_eq!(raw.row(TABLE, &key).await.unwrap().1, millis(later));

        // A data write moves the version on by one.
        store
            .save(&id, &setting(&[("b", json!(2))]), in_secs(60))
            .await
            .unwrap();
        assert_eq!(raw.row(TABLE, &key).await.unwrap().2, version + 1);
    }

    pub(crate) async fn migrate_is_idempotent_and_creates_the_expiry_index(target: Target) {
        let Some((store, raw, table)) = open_own(target, options().with_auto_migrate(false)).await
        else {
            return;
        };
        let first = store.migrate().await.unwrap();
        assert!(first.table_created && first.index_created, "{first:?}");
        let second = store.migrate().await.unwrap();
        assert!(!second.table_created && !second.index_created, "{second:?}");
        let index = store.mapping().index();
        let indexes = match &raw {
            Raw::Sqlite(_) => format!(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = '{index}' \
                 AND tbl_name = '{table}'"
            ),
            Raw::Postgres(_) => format!(
                "SELECT COUNT(*) FROM pg_indexes WHERE indexname = '{index}' \
                 AND tablename = '{table}' AND indexdef LIKE '%(expiry)%'"
            ),
            Raw::MySql(_) => format!(
                "SELECT COUNT(*) FROM information_schema.statistics WHERE table_schema = DATABASE() \
                 AND table_name = '{table}' AND index_name = '{index}' AND column_name = 'expiry'"
            ),
        };
        assert_eq!(raw.count(&indexes).await, 1);
        // Both runs left a working store.
        let id = SessionId::generate();
        store
            .save(&id, &setting(&[("a", json!(1))]), in_secs(60))
            .await
            .unwrap();
        assert!(store.load(&id, None).await.unwrap().is_some());
        raw.drop_table(&table).await;
    }

    pub(crate) async fn a_custom_mapping_uses_an_existing_table(target: Target) {
        let Some((_, raw)) = open(target, options().with_auto_migrate(false)).await else {
            return;
        };
        let table = unique("web_sessions");
        let (blob, text) = match raw {
            Raw::Postgres(_) => ("BYTEA", "TEXT"),
            Raw::MySql(_) => ("LONGBLOB", "TEXT"),
            Raw::Sqlite(_) => ("BLOB", "TEXT"),
        };
        raw.exec(&format!(
            "CREATE TABLE {} (session_id VARCHAR(255) NOT NULL PRIMARY KEY, payload {blob} NOT NULL, \
             expires_at BIGINT NOT NULL, rev BIGINT NOT NULL, note {text} NULL)",
            raw.quote(&table)
        ))
        .await;
        let mapping: TableMapping =
            format!("table={table},id=session_id,data=payload,expiry=expires_at,version=rev")
                .parse()
                .unwrap();
        let store = match &raw {
            Raw::Sqlite(pool) => SqlStore::Sqlite(
                SqliteStore::from_pool(pool.clone(), options().with_mapping(mapping.clone()))
                    .await
                    .unwrap(),
            ),
            Raw::Postgres(pool) => SqlStore::Postgres(
                PostgresStore::from_pool(pool.clone(), options().with_mapping(mapping.clone()))
                    .await
                    .unwrap(),
            ),
            Raw::MySql(pool) => SqlStore::MySql(
                MySqlStore::from_pool(pool.clone(), options().with_mapping(mapping.clone()))
                    .await
                    .unwrap(),
            ),
        };
        // Auto-migration found the table and added only the index.
        let again = store.migrate().await.unwrap();
        assert!(!again.table_created && !again.index_created);

        let id = SessionId::generate();
        store
            .save(&id, &setting(&[("user", json!("ada"))]), in_secs(60))
            .await
            .unwrap();
        let record = store.load(&id, Some(in_secs(120))).await.unwrap().unwrap();
        assert_eq!(record.data["user"], "ada");
        let key = format!("{PREFIX}{id}");
        let rows = raw
            .count(&format!(
                "SELECT COUNT(*) FROM {} WHERE session_id = '{key}' AND expires_at > {} AND rev > 0",
                raw.quote(&table),
                millis(in_secs(100))
            ))
            .await;
        assert_eq!(rows, 1);
        store.delete(&id).await.unwrap();
        assert!(store.load(&id, None).await.unwrap().is_none());

        // A mapping naming a column the table lacks fails at start, clearly.
        let missing: TableMapping = format!("table={table},id=session_id,data=nope")
            .parse()
            .unwrap();
        let error = match &raw {
            Raw::Sqlite(pool) => {
                SqliteStore::from_pool(pool.clone(), options().with_mapping(missing))
                    .await
                    .unwrap_err()
            }
            Raw::Postgres(pool) => {
                PostgresStore::from_pool(pool.clone(), options().with_mapping(missing))
                    .await
                    .unwrap_err()
            }
            Raw::MySql(pool) => {
                MySqlStore::from_pool(pool.clone(), options().with_mapping(missing))
                    .await
                    .unwrap_err()
            }
        };
        assert!(
            matches!(error, satchel::store::sql::OpenError::Migrate(_)),
            "{error:?}"
        );
        raw.drop_table(&table).await;
    }

    pub(crate) async fn expired_rows_are_deleted_in_batches(target: Target) {
        let Some((store, raw, table)) = open_own(target, options()).await else {
            return;
        };
        raw.fill(&table, 2_500, millis(in_secs(-10))).await;
        let live = SessionId::generate();
        store
            .save(&live, &setting(&[("a", json!(1))]), in_secs(60))
            .await
            .unwrap();
        assert_eq!(store.count_expired().await.unwrap(), 2_500);
        let mut reports = Vec::new();
        let deleted = store
            .delete_expired_in_batches(1_000, |progress| reports.push(progress))
            .await
            .unwrap();
        assert_eq!(deleted, 2_500);
        let batches: Vec<_> = reports.iter().map(|p| p.deleted_in_batch).collect();
        assert_eq!(batches, [1_000, 1_000, 500]);
        assert_eq!(reports.last().unwrap().deleted, 2_500);
        assert_eq!(reports.last().unwrap().batches, 3);
        assert_eq!(store.count_expired().await.unwrap(), 0);
        assert!(store.load(&live, None).await.unwrap().is_some());
        assert_eq!(store.delete_expired().await.unwrap(), 0);
        raw.drop_table(&table).await;
    }

    pub(crate) async fn the_background_task_deletes_expired_rows_and_ends_with_the_store(
        target: Target,
    ) {
        let interval = Some(Duration::from_millis(100));
        let Some((store, raw, table)) =
            open_own(target, options().with_cleanup_interval(interval)).await
        else {
            return;
        };
        raw.fill(&table, 30, millis(in_secs(-1))).await;
        let expired = format!(
            "SELECT COUNT(*) FROM {} WHERE {} <= {}",
            raw.quote(&table),
            raw.quote("expiry"),
            millis(in_secs(0))
        );
        let started = Instant::now();
        while raw.count(&expired).await > 0 {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "the task deletes"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // A task started by hand ends once the last clone of the store is gone.
        let handle = match &store {
            SqlStore::Sqlite(store) => store.spawn_cleanup(Duration::from_millis(50)),
            SqlStore::Postgres(store) => store.spawn_cleanup(Duration::from_millis(50)),
            SqlStore::MySql(store) => store.spawn_cleanup(Duration::from_millis(50)),
            _ => unreachable!(),
        };
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert!(!handle.is_finished());
        drop(store);
        tokio::time::timeout(Duration::from_secs(2), handle)
            .await
            .expect("the task ends with the store")
            .unwrap();
        raw.drop_table(&table).await;
    }

    pub(crate) async fn a_corrupt_row_is_a_decode_error_and_a_save_replaces_it(target: Target) {
        let Some((store, raw)) = open(target, options()).await else {
            return;
        };
        let id = SessionId::generate();
        let key = format!("{PREFIX}{id}");
        raw.exec(&format!(
            "INSERT INTO {} VALUES ('{key}', {}, {}, 1)",
            raw.quote(TABLE),
            raw.blob(),
            millis(in_secs(60))
        ))
        .await;
        let error = store.load(&id, None).await.unwrap_err();
        assert!(matches!(error, StoreError::Decode(_)), "{error:?}");
        let error = store.load(&id, Some(in_secs(90))).await.unwrap_err();
        assert!(matches!(error, StoreError::Decode(_)), "{error:?}");
        store
            .save(&id, &setting(&[("fresh", json!(true))]), in_secs(60))
            .await
            .unwrap();
        let record = store.load(&id, None).await.unwrap().unwrap();
        assert_eq!(record.data.keys().collect::<Vec<_>>(), ["fresh"]);
    }

    pub(crate) async fn a_row_created_again_never_reuses_a_version(target: Target) {
        let Some((store, _)) = open(target, options()).await else {
            return;
        };
        let id = SessionId::generate();
        store
            .save(&id, &setting(&[("a", json!(1))]), in_secs(60))
            .await
            .unwrap();
        let stale = store.load(&id, None).await.unwrap().unwrap();
        store.delete(&id).await.unwrap();
        store
            .save(&id, &setting(&[("b", json!(2))]), in_secs(60))
            .await
            .unwrap();
        let fresh = store.load(&id, None).await.unwrap().unwrap();
        assert_ne!(fresh.version, stale.version);
        // A request still holding the deleted row's version cannot overwrite the new row.
        let changes = setting(&[("c", json!(3))]);
        let mut data = stale.data.clone();
        changes.apply(&mut data);
        let seen = satchel::store::Seen {
            version: stale.version.unwrap(),
            data: &data,
            permanent: None,
            created: None,
            lifetime: None,
        };
        store
            .save_seen(&id, seen, &changes, in_secs(60))
            .await
            .unwrap();
        let record = store.load(&id, None).await.unwrap().unwrap();
        assert_eq!(record.data.keys().collect::<Vec<_>>(), ["b", "c"]);
    }

    pub(crate) async fn delete_expired_sweeps_the_shared_table(target: Target) {
        let Some((store, _)) = open(target, options()).await else {
            return;
        };
        let id = SessionId::generate();
        store
            .save(&id, &setting(&[("a", json!(1))]), in_secs(-1))
            .await
            .unwrap();
        assert!(store.delete_expired().await.unwrap() >= 1);
        assert!(store.load(&id, None).await.unwrap().is_none());
    }

    pub(crate) async fn ids_differing_in_case_are_different_sessions(target: Target) {
        let Some((store, _)) = open(target, options()).await else {
            return;
        };
        let id = loop {
            let id = SessionId::generate();
            if id.to_string().bytes().any(|b| b.is_ascii_lowercase()) {
                break id;
            }
        };
        let text = id.to_string();
        let position = text.find(|c: char| c.is_ascii_lowercase()).unwrap();
        let mut flipped = text.clone();
        flipped.replace_range(
            position..=position,
            &text[position..=position].to_ascii_uppercase(),
        );
        let other: SessionId = flipped.parse().unwrap();
        store
            .save(&id, &setting(&[("a", json!(1))]), in_secs(60))
            .await
            .unwrap();
        assert!(store.load(&other, None).await.unwrap().is_none());
        assert_eq!(
            store
                .save(&other, &setting(&[("b", json!(2))]), in_secs(60))
                .await
                .unwrap(),
            Saved::Stored
        );
        assert_eq!(store.load(&id, None).await.unwrap().unwrap().data.len(), 1);
        assert_eq!(
            store.load(&other, None).await.unwrap().unwrap().data.len(),
            1
        );
    }
}

/// One `#[tokio::test]` per case and target.
macro_rules! per_target {
    ($($case:ident),* $(,)?) => {
        per_target!(@target sqlite_file, Target::SqliteFile; $($case),*);
        per_target!(@target sqlite_memory, Target::SqliteMemory; $($case),*);
        per_target!(@target postgres, Target::Postgres; $($case),*);
        per_target!(@target mariadb, Target::MariaDb; $($case),*);
    };
    (@target $module:ident, $target:expr; $($case:ident),*) => {
        mod $module {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    cases::$case($target).await;
                }
            )*
        }
    };
}

per_target!(
    a_store_of_100000_sessions_lists_each_once,
    fifty_concurrent_requests_keep_all_fifty_keys,
    two_stores_on_one_database_keep_every_key,
    two_stores_create_sessions_in_one_fresh_table_at_once,
    the_key_prefix_is_applied,
    a_touch_changes_neither_data_nor_version,
    migrate_is_idempotent_and_creates_the_expiry_index,
    a_custom_mapping_uses_an_existing_table,
    expired_rows_are_deleted_in_batches,
    the_background_task_deletes_expired_rows_and_ends_with_the_store,
    a_corrupt_row_is_a_decode_error_and_a_save_replaces_it,
    a_row_created_again_never_reuses_a_version,
    ids_differing_in_case_are_different_sessions,
    delete_expired_sweeps_the_shared_table,
    cleanup_removes_expired_rows_and_counts_them,
    no_session_id_is_stored_in_the_table,
    session_values_are_sealed_in_the_table,
);

#[tokio::test]
async fn sqlite_files_run_in_wal_mode_and_memory_on_one_connection() {
    let store = sqlite_file_store().await.unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(sync, 1, "NORMAL");
    assert!(store.capabilities().persistent);

    let store = sqlite_memory_store().await.unwrap();
    assert_eq!(store.pool().options().get_max_connections(), 1);
    assert!(!store.capabilities().persistent);
    // Every connection the pool hands out is the one holding the database.
    let id = SessionId::generate();
    store
        .save(&id, &setting(&[("a", json!(1))]), in_secs(60))
        .await
        .unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.load(&id, None).await.unwrap().is_some() })
        })
        .collect();
    for task in tasks {
        assert!(task.await.unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_concurrent_loads_are_read_together_and_each_gets_its_own_row() {
    for store in [
        sqlite_file_store().await.unwrap(),
        sqlite_memory_store().await.unwrap(),
    ] {
        let ids: Vec<SessionId> = (0..40).map(|_| SessionId::generate()).collect();
        for (i, id) in ids.iter().enumerate() {
            store
                .save(id, &setting(&[("i", json!(i))]), in_secs(60))
                .await
                .unwrap();
        }
        let expired = SessionId::generate();
        store
            .save(&expired, &setting(&[("i", json!(-1))]), in_secs(1))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(1100)).await;
        // 200 loads at once: every stored id several times, and ids with no live row.
        let tasks: Vec<_> = (0..200)
            .map(|n| {
                let store = store.clone();
                let (id, expected) = match n % 50 {
                    k @ 0..40 => (ids[k], Some(json!(k))),
                    40..45 => (expired, None),
                    _ => (SessionId::generate(), None),
                };
                tokio::spawn(async move {
                    let record = store.load(&id, None).await.unwrap();
                    assert_eq!(record.map(|r| r.data["i"].clone()), expected, "load {n}");
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    }
}

#[tokio::test]
async fn names_are_validated_before_any_sql_is_built() {
    let config = SessionConfig::default()
        .with_session_type(SessionType::Sql)
        .with_sql_url("sqlite::memory:")
        .with_sql_table("users; drop table x");
    let error = satchel::store::from_config(&config).await.unwrap_err();
    assert!(
        error.to_string().contains("SESSION_SQLALCHEMY_TABLE"),
        "{error}"
    );
    let config = config
        .with_sql_table("flask_sessions")
        .with_sql_model("id=id,data=x; DROP TABLE y");
    let error = satchel::store::from_config(&config).await.unwrap_err();
    assert!(
        error.to_string().contains("SESSION_SQLALCHEMY_MODEL"),
        "{error}"
    );
    for bad in [
        "users; drop table x",
        "a\"b",
        "a`b",
        "1st",
        "",
        &"t".repeat(64),
    ] {
        assert!(TableMapping::new(bad).is_err(), "{bad:?}");
    }
}

#[tokio::test]
async fn session_type_sql_builds_each_backend_from_configuration_alone() {
    let mut urls = vec!["sqlite::memory:".to_owned(), sqlite_file_url()];
    urls.extend(postgres_url());
    urls.extend(mysql_url());
    for url in urls {
        let config = SessionConfig::default()
            .with_session_type(SessionType::Sql)
            .with_sql_url(&url)
            .with_sql_table(TABLE);
        let store = satchel::store::from_config(&config).await.unwrap();
        let id = SessionId::generate();
        store
            .save(&id, &setting(&[("k", json!(url))]), in_secs(60))
            .await
            .unwrap();
        assert_eq!(store.load(&id, None).await.unwrap().unwrap().data["k"], url);
        store.delete(&id).await.unwrap();
    }
}

#[tokio::test]
async fn bad_urls_are_refused_naming_the_key_and_masking_the_password() {
    let config = SessionConfig::default().with_session_type(SessionType::Sql);
    let error = satchel::store::from_config(&config).await.unwrap_err();
    assert!(matches!(error, ConfigError::Conflict(_)), "{error:?}");
    assert!(error.to_string().contains("SESSION_SQL_URL"), "{error}");

    for url in [
        "redis://user:hunter2@127.0.0.1/0",
        "postgres://user:hunter2@127.0.0.1:notaport/db",
        "sqlite://x.db?mode=sideways",
    ] {
        let config = config.clone().with_sql_url(url);
        let error = satchel::store::from_config(&config).await.unwrap_err();
        let text = error.to_string();
        assert!(text.contains("SESSION_SQL_URL"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }
}

#[tokio::test]
async fn an_unreachable_database_stops_the_start_within_the_timeout() {
    let url = format!("postgres://postgres:hunter2@127.0.0.1:{}/db", free_port());
    let config = SessionConfig::default()
        .with_session_type(SessionType::Sql)
        .with_sql_url(&url)
        .with_store_timeout(Duration::from_millis(500));
    let started = Instant::now();
    let error = satchel::store::from_config(&config).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3));
    let text = error.to_string();
    assert!(
        text.contains("SESSION_SQL_AUTO_MIGRATE") && !text.contains("hunter2"),
        "{text}"
    );

    // Without migration at start the store still makes one connection, and refuses to
    // start without it, as every networked store does.
    for url in [
        url,
        format!("mysql://root:hunter2@127.0.0.1:{}/db", free_port()),
    ] {
        let config = config
            .clone()
            .with_sql_url(&url)
            .with_sql_auto_migrate(false);
        let started = Instant::now();
        let error = satchel::store::from_config(&config).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(3));
        assert!(
            matches!(error, ConfigError::Io { ref key, .. } if key == "SESSION_SQL_URL"),
            "{error:?}"
        );
        let text = error.to_string();
        assert!(
            text.contains("cannot be reached") && !text.contains("hunter2"),
            "{text}"
        );
    }
}

/// An SQL configuration on `url` with a short timeout.
fn configured(url: &str, timeout: Duration) -> SessionConfig {
    SessionConfig::default()
        .with_session_type(SessionType::Sql)
        .with_sql_url(url)
        .with_store_timeout(timeout)
}

/// A request while the store is down: an empty 500 and no cookie.
async fn fails_empty(app: &App, method: &str, path: &str, cookie: &str) {
    let reply = Axum.request(app, method, path, Some(cookie)).await;
    assert_eq!(reply.status, 500, "{method} {path}");
    assert_eq!(reply.body, "", "{method} {path}");
    assert!(reply.set_cookie.is_empty(), "{method} {path}");
}

/// Logs in through `app`, then takes the database away with `stop`: every operation
/// fails fast with a backend error and every request gets an empty 500; after `start`
/// the same store works again, with the session as it was.
async fn outage(store: BoxedStore, timeout: Duration, stop: impl FnOnce(), start: impl FnOnce()) {
    let config = SessionConfig::default();
    let app = App::new(store.clone(), config);
    let mut browser = Browser::new(&Axum, &app);
    browser.post("/login?uid=42").await;
    assert_eq!(browser.get("/read").await.body, "42");
    let id = browser.id();
    let cookie = format!("session={}", browser.cookie.clone().unwrap());

    stop();
    for _ in 0..2 {
        let started = Instant::now();
        let error = store.load(&id, None).await.unwrap_err();
        assert!(matches!(error, StoreError::Backend(_)), "{error:?}");
        let elapsed = started.elapsed();
        eprintln!("a load while the database is down failed after {elapsed:?}: {error:?}");
        assert!(elapsed < timeout + Duration::from_secs(2), "{elapsed:?}");
    }
    let error = store
        .save(&id, &setting(&[("x", json!(1))]), in_secs(60))
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Backend(_)), "{error:?}");
    fails_empty(&app, "GET", "/read", &cookie).await;
    fails_empty(&app, "POST", "/set/k", &cookie).await;
    fails_empty(&app, "POST", "/logout", &cookie).await;

    start();
    let started = Instant::now();
    loop {
        match store.load(&id, None).await {
            Ok(_) => break,
            Err(error) => {
                assert!(
                    started.elapsed() < Duration::from_secs(15),
                    "the store did not recover: {error:?}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    let reply = Axum.request(&app, "GET", "/read", Some(&cookie)).await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "42"));
    assert_eq!(browser.post("/set/after").await.status, 200);
    assert_eq!(browser.get("/count-keys").await.body, "3");
}

/// Runs `program` and panics with its output unless it succeeds.
fn run(program: &str, args: &[&str]) {
    let output = Command::new(program).args(args).output().unwrap();
    assert!(
        output.status.success(),
        "{program} {args:?}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A PostgreSQL server of this test's own, in a temporary directory, run as the
/// `postgres` user (which needs root).
struct PrivatePostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    running: bool,
}

impl PrivatePostgres {
    fn start() -> Option<Self> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|versions| {
                versions
                    .filter_map(Result::ok)
                    .map(|version| version.path().join("bin"))
                    .filter(|bin| bin.join("initdb").exists())
                    .max()
            });
        let Some(bin) = bin else {
            return satchel::testing::service_unavailable(
                "a private PostgreSQL",
                "no /usr/lib/postgresql/*/bin/initdb",
            );
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_str().unwrap().to_owned();
        let owned = Command::new("chown")
            .args(["postgres:postgres", &path])
            .status()
            .is_ok_and(|status| status.success());
        if !owned {
            return satchel::testing::service_unavailable(
                "a private PostgreSQL",
                "cannot hand a directory to the postgres user (needs root)",
            );
        }
        let initdb = bin.join("initdb");
        run(
            "runuser",
            &[
                "-u",
                "postgres",
                "--",
                initdb.to_str().unwrap(),
                "-D",
                &format!("{path}/data"),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        );
        let mut server = Self {
            dir,
            bin,
            port: free_port(),
            running: false,
        };
        server.up();
        Some(server)
    }

    fn pg_ctl(&self, args: &[&str]) {
        let path = self.dir.path().to_str().unwrap();
        let pg_ctl = self.bin.join("pg_ctl");
        let data = format!("{path}/data");
        let mut all = vec![
            "-u",
            "postgres",
            "--",
            pg_ctl.to_str().unwrap(),
            "-D",
            &data,
            "-w",
        ];
        all.extend(args);
        run("runuser", &all);
    }

    fn up(&mut self) {
        let path = self.dir.path().to_str().unwrap().to_owned();
        let options = format!(
            "-p {} -k {path} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port
        );
        let log = format!("{path}/log");
        self.pg_ctl(&["-o", &options, "-l", &log, "start"]);
        self.running = true;
    }

    fn down(&mut self) {
        self.pg_ctl(&["-m", "immediate", "stop"]);
        self.running = false;
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        if self.running {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.down()));
        }
    }
}

/// A MariaDB server of this test's own, in a temporary directory.
struct PrivateMariaDb {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl PrivateMariaDb {
    async fn start() -> Option<Self> {
        let installed = ["/usr/sbin/mariadbd", "/usr/bin/mariadb-install-db"]
            .iter()
            .all(|program| Path::new(program).exists());
        if !installed {
            return satchel::testing::service_unavailable(
                "a private MariaDB",
                "mariadbd or mariadb-install-db is missing",
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_str().unwrap().to_owned();
        run(
            "mariadb-install-db",
            &[
                "--no-defaults",
                &format!("--datadir={path}/data"),
                "--user=root",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
        );
        let mut server = Self {
            dir,
            port: free_port(),
            child: None,
        };
        server.up().await;
        let pool = MySqlPool::connect(&format!("mysql://root@127.0.0.1:{}/mysql", server.port))
            .await
            .unwrap();
        sqlx::raw_sql("CREATE DATABASE satchel")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        Some(server)
    }

    async fn up(&mut self) {
        let path = self.dir.path().to_str().unwrap();
        let child = Command::new("/usr/sbin/mariadbd")
            .args([
                "--no-defaults",
                &format!("--datadir={path}/data"),
                &format!("--port={}", self.port),
                "--bind-address=127.0.0.1",
                &format!("--socket={path}/sock"),
                &format!("--pid-file={path}/pid"),
                &format!("--log-error={path}/error.log"),
                "--user=root",
                "--skip-grant-tables",
                "--innodb-buffer-pool-size=16M",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the private MariaDB did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn signal(&self, signal: &str) {
        common::signal(self.child.as_ref().unwrap().id(), signal);
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-CONT", &child.id().to_string()])
                .status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}/satchel", self.port)
    }
}

impl Drop for PrivateMariaDb {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_works_again_by_itself_after_the_server_restarts() {
    let Some(server) = PrivatePostgres::start() else {
        return;
    };
    let timeout = Duration::from_secs(1);
    let store = satchel::store::from_config(&configured(&server.url(), timeout))
        .await
        .unwrap();
    let server = std::sync::Mutex::new(server);
    outage(
        store,
        timeout,
        || server.lock().unwrap().down(),
        || server.lock().unwrap().up(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_works_again_by_itself_after_the_server_is_killed_and_restarted() {
    let Some(mut server) = PrivateMariaDb::start().await else {
        return;
    };
    let timeout = Duration::from_secs(1);
    let store = satchel::store::from_config(&configured(&server.url(), timeout))
        .await
        .unwrap();
    let app = App::new(store.clone(), SessionConfig::default());
    let mut browser = Browser::new(&Axum, &app);
    browser.post("/login?uid=42").await;
    let id = browser.id();
    let cookie = format!("session={}", browser.cookie.clone().unwrap());

    server.kill();
    let started = Instant::now();
    let error = store.load(&id, None).await.unwrap_err();
    assert!(matches!(error, StoreError::Backend(_)), "{error:?}");
    let elapsed = started.elapsed();
    eprintln!("a load while the database is down failed after {elapsed:?}: {error:?}");
    assert!(elapsed < timeout + Duration::from_secs(2), "{elapsed:?}");
    fails_empty(&app, "GET", "/read", &cookie).await;
    fails_empty(&app, "POST", "/set/k", &cookie).await;

    server.up().await;
    let started = Instant::now();
    while store.load(&id, None).await.is_err() {
        assert!(started.elapsed() < Duration::from_secs(15), "no recovery");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let reply = Axum.request(&app, "GET", "/read", Some(&cookie)).await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "42"));
    assert_eq!(browser.post("/set/after").await.status, 200);
    assert_eq!(browser.get("/count-keys").await.body, "3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mariadb_that_stops_answering_fails_fast_and_loses_nothing() {
    let Some(server) = PrivateMariaDb::start().await else {
        return;
    };
    let timeout = Duration::from_secs(1);
    let store = satchel::store::from_config(&configured(&server.url(), timeout))
        .await
        .unwrap();
    outage(
        store,
        timeout,
        || server.signal("-STOP"),
        || server.signal("-CONT"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breaker_opens_on_a_stopped_postgres_and_closes_when_it_is_back() {
    let Some(server) = PrivatePostgres::start() else {
        return;
    };
    let timeout = Duration::from_millis(800);
    let store = satchel::store::from_config(&configured(&server.url(), timeout))
        .await
        .unwrap();
    let server = std::sync::Mutex::new(server);
    scenarios::the_breaker_guards_a_store_that_stops_answering(
        store,
        timeout,
        || server.lock().unwrap().down(),
        || server.lock().unwrap().up(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breaker_opens_on_a_mariadb_that_stops_answering_and_closes_when_it_is_back() {
    let Some(server) = PrivateMariaDb::start().await else {
        return;
    };
    let timeout = Duration::from_millis(800);
    let store = satchel::store::from_config(&configured(&server.url(), timeout))
        .await
        .unwrap();
    scenarios::the_breaker_guards_a_store_that_stops_answering(
        store,
        timeout,
        || server.signal("-STOP"),
        || server.signal("-CONT"),
    )
    .await;
}

/// The shared scenarios through the axum layer on PostgreSQL in Flask-Session's layout.
#[cfg(feature = "flask")]
mod flask_scenarios_postgres {
    use super::*;
    scenarios!(Axum, flask_store(postgres_url()));
}
