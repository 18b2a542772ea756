//! The `filesystem` store: one file per session in a local directory.
//!
//! # Layout
//!
//! ```text
//! <dir>/session%3A<43-character id>   one file per session (escaped key prefix + id)
//! <dir>/.locks/00 … 63                 lock files, never deleted
//! <dir>/.tmp-<random>                  a write in progress, renamed over its target
//! ```
//!
//! A session file holds a small versioned MessagePack document with the session's data and
//! its permanent flag. The session's expiry is the file's **modification time**: the
//! refresh on load moves it forward without rewriting the data, and pruning or sweeping
//! needs only the directory's metadata.
//!
//! File names never come from client input: a name is the key prefix, with every byte
//! outside `[A-Za-z0-9._-]` escaped as `%XX`, followed by the text of a [`SessionId`],
//! which was validated (43 characters of base64url) before any store sees it. Any other
//! file in the directory is foreign to the store: it is never counted, read or deleted.
//!
//! # Concurrency
//!
//! Writes are atomic (a temporary file in the same directory, renamed over the target), so
//! a reader sees either the old or the new content, never half of it, even when a process
//! crashes mid-write.
//! Every read-modify-write (save, cycle, delete) holds an exclusive advisory lock (`flock`)
//! on one of 64 lock files, chosen by the session id, so requests for the same session
//! are applied one after the other; this also holds between processes sharing the
//! directory, as long as the file system supports `flock` (local file systems do, and so
//! does NFS on Linux). All processes sharing a directory should run as the same user:
//! moving a file's modification time forward needs ownership of the file.
//!
//! # Durability
//!
//! Files are not flushed to disk (`fsync`) before the rename: a flush per request would
//! cost a disk round trip on every save, for data that is only a session. What a process
//! crash cannot do, a power failure can: a session saved in the last seconds before it
//! may come back as its previous version, or as a damaged file, which reads as no
//! session (a fresh one starts), never as an error.
//!
//! All file I/O runs on tokio's blocking thread pool, so the store needs a tokio runtime.

#[cfg(not(unix))]
compile_error!("the `filesystem` store needs a Unix-like operating system");

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::error::StoreError;
use crate::id::{ID_LEN, SessionId};
use crate::record::{Changes, KeyUpdate, Record, Updated};
use crate::store::{Capabilities, DEFAULT_KEY_PREFIX, ExpiredDeletion, Page, Saved, SessionStore};

mod format;
#[cfg(feature = "fuzzing")]
pub(crate) use format::fuzz;
mod locking;
mod ops;
mod paths;
mod prune;

use locking::{LOCK_DIR, STRIPES, create_lock_file, lock_name};
use paths::{create_dir, dir_mode_for, escape_prefix, probe, warn_if_listable};

/// Default number of session files before the oldest are pruned (SESSION_FILE_THRESHOLD):
/// Flask-Session's, a bound that keeps a flood of new sessions from filling the disk.
pub const DEFAULT_THRESHOLD: usize = super::defaults::FILE_THRESHOLD;
/// Default permission bits of session files (SESSION_FILE_MODE): readable and writable
/// by the owner only, as the files hold session data and their names are session ids.
pub const DEFAULT_MODE: u32 = super::defaults::FILE_MODE;

/// Writes one process runs at once (see [`FilesystemStore::write_blocking`]).
const WRITERS: usize = 2;
/// A temporary file untouched for this long is left over from a crash.
const STALE_TEMP_AFTER: Duration = Duration::from_secs(600);
/// The longest file name most file systems accept.
const MAX_NAME_LEN: usize = 255;

/// A store that keeps each session in its own file (SESSION_TYPE=`filesystem`).
///
/// Sessions survive restarts, and several processes on one machine (or on a shared file
/// system with working `flock`) can share a directory. Each file is written atomically
/// with the configured permission bits; its modification time is the session's expiry,
/// so a refresh never rewrites the data. When a new session leaves more than `threshold`
/// session files in the directory, expired files are deleted first, then those that
/// expire soonest, down to the threshold. See the [module documentation](self) for the
/// layout and the locking.
///
/// Cloning is cheap and shares the store. Every operation needs a tokio runtime.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use satchel::{Changes, FilesystemStore, SessionId, SessionStore};
///
/// # tokio_test::block_on(async {
/// let dir = tempfile::tempdir()?;
/// let store = FilesystemStore::builder(dir.path().join("sessions"))
///     .with_threshold(10_000)
///     .open()?;
///
/// let id = SessionId::generate();
/// let mut changes = Changes::default();
/// changes.set("user", serde_json::json!("ada"));
/// store.save(&id, &changes, SystemTime::now() + Duration::from_secs(60)).await?;
/// let record = store.load(&id, None).await?.expect("stored");
/// assert_eq!(record.data["user"], "ada");
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct FilesystemStore {
    inner: Arc<Inner>,
}

impl fmt::Debug for FilesystemStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FilesystemStore")
            .field("dir", &self.inner.dir)
            .field("key_prefix", &self.inner.key_prefix)
            .field("threshold", &self.inner.threshold)
            .field("mode", &format_args!("{:#o}", self.inner.mode))
            .finish()
    }
}

/// Settings for a [`FilesystemStore`], made by [`FilesystemStore::builder`] and turned
/// into a store by [`open`](Self::open).
///
/// # Examples
///
/// ```
/// use satchel::FilesystemStore;
///
/// let dir = tempfile::tempdir()?;
/// let store = FilesystemStore::builder(dir.path())
///     .with_key_prefix("shop:")
///     .with_threshold(2_000)
///     .with_mode(0o640)
///     .open()?;
/// assert_eq!(store.key_prefix(), "shop:");
/// assert_eq!(store.mode(), 0o640);
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct FilesystemStoreBuilder {
    dir: PathBuf,
    key_prefix: String,
    threshold: usize,
    mode: u32,
}

/// Why a [`FilesystemStore`] cannot be opened.
///
/// The message names the directory and the problem; the cause is the
/// [source](std::error::Error::source).
///
/// # Examples
///
/// ```
/// use satchel::store::filesystem::{FilesystemStore, OpenError};
///
/// let dir = tempfile::tempdir()?;
/// let file = dir.path().join("a-file");
/// std::fs::write(&file, b"")?;
/// let error = FilesystemStore::open(file.join("sessions")).unwrap_err();
/// assert!(matches!(error, OpenError::CannotCreate { .. }));
/// assert!(error.to_string().ends_with("cannot be created"));
/// # Ok::<_, std::io::Error>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The directory (or its lock subdirectory) does not exist and cannot be created.
    #[error("session directory {path:?} cannot be created")]
    CannotCreate {
        /// The directory.
        path: PathBuf,
        /// What failed.
        #[source]
        source: io::Error,
    },
    /// The directory exists, but files cannot be created in it.
    #[error("session directory {path:?} is not writable")]
    NotWritable {
        /// The directory.
        path: PathBuf,
        /// What failed.
        #[source]
        source: io::Error,
    },
    /// The file mode has bits beyond `0o777`, or does not let the owner read and write.
    #[error("session file mode {mode:#o} must be within 0o777 and include 0o600")]
    InvalidMode {
        /// The mode as given.
        mode: u32,
    },
    /// The key prefix, once escaped, leaves no room for the id in a file name.
    #[error("key prefix is {len} bytes long once escaped, at most {max} fit in a file name")]
    KeyPrefixTooLong {
        /// The length of the escaped prefix.
        len: usize,
        /// The longest prefix that fits.
        max: usize,
    },
}

struct Inner {
    /// The directory, made absolute when the store was opened.
    dir: PathBuf,
    lock_dir: PathBuf,
    key_prefix: String,
    /// The key prefix as it appears in file names.
    file_prefix: String,
    threshold: usize,
    mode: u32,
    stale_temp_after: Duration,
    /// Admits [`WRITERS`] writes at a time: see [`FilesystemStore::write_blocking`].
    writers: tokio::sync::Semaphore,
}

impl FilesystemStore {
    /// Starts configuring a store in `dir`, with the defaults: key prefix
    /// [`DEFAULT_KEY_PREFIX`], threshold [`DEFAULT_THRESHOLD`], mode [`DEFAULT_MODE`].
    ///
    /// # Examples
    ///
    /// ```
    /// use satchel::FilesystemStore;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let store = FilesystemStore::builder(dir.path()).with_threshold(100).open()?;
    /// assert_eq!(store.threshold(), 100);
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn builder(dir: impl Into<PathBuf>) -> FilesystemStoreBuilder {
        FilesystemStoreBuilder {
            dir: dir.into(),
            key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
            threshold: DEFAULT_THRESHOLD,
            mode: DEFAULT_MODE,
        }
    }

    /// Opens a store in `dir` with the default settings; see
    /// [`FilesystemStoreBuilder::open`].
    ///
    /// # Examples
    ///
    /// ```
    /// use satchel::FilesystemStore;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let store = FilesystemStore::open(dir.path().join("sessions"))?;
    /// assert!(dir.path().join("sessions").is_dir());
    /// assert_eq!(store.key_prefix(), "session:");
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`OpenError`] when the directory cannot be created or is not writable.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, OpenError> {
        Self::builder(dir).open()
    }

    /// The directory the sessions live in, made absolute when the store was opened.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The key prefix, as configured (before escaping for file names).
    #[must_use]
    pub fn key_prefix(&self) -> &str {
        &self.inner.key_prefix
    }

    /// How many session files the directory may hold before the oldest are pruned; 0
    /// means no limit.
    #[must_use]
    pub fn threshold(&self) -> usize {
        self.inner.threshold
    }

    /// The permission bits of session files.
    #[must_use]
    pub fn mode(&self) -> u32 {
        self.inner.mode
    }
}

impl FilesystemStoreBuilder {
    /// Sets the key prefix that starts every session file's name (default
    /// [`DEFAULT_KEY_PREFIX`], `"session:"`, stored as `session%3A`). Stores with different prefixes can share a
    /// directory without seeing each other's files.
    #[must_use]
    pub fn with_key_prefix(mut self, key_prefix: impl Into<String>) -> Self {
        self.key_prefix = key_prefix.into();
        self
    }

    /// Sets how many session files the directory may hold (default
    /// [`DEFAULT_THRESHOLD`]); 0 means no limit. The bound keeps a flood of new sessions
    /// from filling the disk.
    #[must_use]
    pub fn with_threshold(mut self, threshold: usize) -> Self {
        self.threshold = threshold;
        self
    }

    /// Sets the permission bits of session files (default [`DEFAULT_MODE`], `0o600`: the
    /// files hold session data, and their names are session ids). They are applied
    /// whatever the process's umask. Directories the store creates get the same bits plus
    /// search permission wherever read permission is granted (`0o700` by default).
    #[must_use]
    pub fn with_mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }

    /// Opens the store: creates the directory when it is missing (and its parents),
    /// checks that files can be created in it, and prepares the lock files.
    ///
    /// Problems show up here, at startup, not on the first request.
    ///
    /// Unlike the `open` of the networked stores, this one is not `async`: it makes a few
    /// calls on the local disk, once, and waits for no server, so it needs no runtime and
    /// can run anywhere, e.g. in `main` before the runtime starts. The store's own
    /// operations, which run for every request, go to tokio's blocking thread pool.
    ///
    /// # Examples
    ///
    /// ```
    /// use satchel::FilesystemStore;
    ///
    /// let dir = tempfile::tempdir()?;
    /// let store = FilesystemStore::builder(dir.path().join("a/b")).open()?;
    /// assert!(store.dir().ends_with("a/b"));
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// - [`OpenError::CannotCreate`] when the directory is missing and cannot be created
    ///   (or its path names a file);
    /// - [`OpenError::NotWritable`] when no file can be created in it;
    /// - [`OpenError::InvalidMode`] and [`OpenError::KeyPrefixTooLong`] for settings
    ///   that cannot work.
    pub fn open(self) -> Result<FilesystemStore, OpenError> {
        let Self {
            dir,
            key_prefix,
            threshold,
            mode,
        } = self;
        if mode & !0o777 != 0 || mode & 0o600 != 0o600 {
            return Err(OpenError::InvalidMode { mode });
        }
        let file_prefix = escape_prefix(&key_prefix);
        let max = MAX_NAME_LEN - ID_LEN;
        if file_prefix.len() > max {
            return Err(OpenError::KeyPrefixTooLong {
                len: file_prefix.len(),
                max,
            });
        }

        let dir = std::path::absolute(&dir).map_err(|source| OpenError::CannotCreate {
            path: dir.clone(),
            source,
        })?;
        let dir_mode = dir_mode_for(mode);
        create_dir(&dir, dir_mode)?;
        warn_if_listable(&dir, mode);
        probe(&dir, mode).map_err(|source| OpenError::NotWritable {
            path: dir.clone(),
            source,
        })?;

        let lock_dir = dir.join(LOCK_DIR);
        create_dir(&lock_dir, dir_mode)?;
        for stripe in 0..STRIPES {
            create_lock_file(&lock_dir.join(lock_name(stripe)), mode).map_err(|source| {
                OpenError::NotWritable {
                    path: lock_dir.clone(),
                    source,
                }
            })?;
        }

        Ok(FilesystemStore {
            inner: Arc::new(Inner {
                dir,
                lock_dir,
                key_prefix,
                file_prefix,
                threshold,
                mode,
                stale_temp_after: STALE_TEMP_AFTER,
                writers: tokio::sync::Semaphore::new(WRITERS),
            }),
        })
    }
}

impl FilesystemStore {
    /// Runs a write (which creates, renames or deletes files) on tokio's blocking pool,
    /// at most [`WRITERS`] at a time in this process. Every write changes the one
    /// directory, and the kernel serialises those changes anyway: dozens of blocking
    /// threads queueing for the directory's lock would only burn CPU spinning on it.
    async fn write_blocking<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T, StoreError> + Send + 'static,
    {
        let _permit = self
            .inner
            .writers
            .acquire()
            .await
            .map_err(StoreError::backend)?;
        blocking(work).await
    }
}

/// Runs blocking file work on tokio's blocking pool.
async fn blocking<T, F>(work: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(StoreError::backend)?
}

impl SessionStore for FilesystemStore {
    async fn load(
        &self,
        id: &SessionId,
        touch: Option<SystemTime>,
    ) -> Result<Option<Record>, StoreError> {
        let inner = Arc::clone(&self.inner);
        let id = *id;
        blocking(move || inner.load(&id, touch)).await
    }

    async fn save(
        &self,
        id: &SessionId,
        changes: &Changes,
        expires_at: SystemTime,
    ) -> Result<Saved, StoreError> {
        let inner = Arc::clone(&self.inner);
        let id = *id;
        let changes = changes.clone();
        self.write_blocking(move || inner.save(&id, &changes, expires_at))
            .await
    }

    async fn cycle(
        &self,
        old: &SessionId,
        new: &SessionId,
        changes: &Changes,
        expires_at: SystemTime,
    ) -> Result<Saved, StoreError> {
        let inner = Arc::clone(&self.inner);
        let (old, new) = (*old, *new);
        let changes = changes.clone();
        self.write_blocking(move || inner.cycle(&old, &new, &changes, expires_at))
            .await
    }

    async fn update(
        &self,
        id: &SessionId,
        key: &str,
        update: &KeyUpdate,
    ) -> Result<Updated, StoreError> {
        let inner = Arc::clone(&self.inner);
        let id = *id;
        let (key, update) = (key.to_owned(), update.clone());
        self.write_blocking(move || inner.update(&id, &key, &update))
            .await
    }

    async fn delete(&self, id: &SessionId) -> Result<(), StoreError> {
        let inner = Arc::clone(&self.inner);
        let id = *id;
        self.write_blocking(move || inner.delete(&id)).await
    }

    /// Writes and removes a file in the directory: a full disk, or a directory that is
    /// gone or may no longer be written to, fails.
    async fn ping(&self) -> Result<(), StoreError> {
        let inner = Arc::clone(&self.inner);
        blocking(move || {
            probe(&inner.dir, inner.mode).map_err(|error| {
                StoreError::backend(format!("cannot write to {}: {error}", inner.dir.display()))
            })
        })
        .await
    }

    /// Pages in id order (the directory, sorted); the cursor is the last id of the page
    /// before.
    async fn list(&self, cursor: Option<&str>, limit: usize) -> Result<Page, StoreError> {
        let inner = Arc::clone(&self.inner);
        let after = match cursor {
            Some(text) => Some(text.parse::<SessionId>().map_err(StoreError::backend)?),
            None => None,
        };
        let limit = limit.max(1);
        blocking(move || {
            let mut ids: Vec<SessionId> = inner
                .scan()
                .map_err(StoreError::backend)?
                .into_iter()
                .filter_map(|(name, _)| name.get(inner.file_prefix.len()..)?.parse().ok())
                .filter(|id| after.is_none_or(|after| *id > after))
                .collect();
            ids.sort_unstable();
            let mut entries = Vec::new();
            let mut last = None;
            let mut ids = ids.into_iter().peekable();
            while entries.len() < limit
                && let Some(id) = ids.next()
            {
                last = Some(id);
                match inner.load(&id, None) {
                    Ok(Some(record)) => entries.push((id, record)),
                    // Gone meanwhile, expired, or not a session this release reads.
                    Ok(None) | Err(StoreError::Decode(_)) => {}
                    Err(error) => return Err(error),
                }
            }
            // No further page when no file is left after this one.
            let next = ids.peek().and(last).map(|id| id.to_string());
            Ok(Page::new(entries, next))
        })
        .await
    }

    fn name(&self) -> &'static str {
        "filesystem"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            writable: true,
            persistent: true,
            shared: true,
            listable: true,
            list_may_repeat: false,
            in_cookie: false,
        }
    }
}

impl ExpiredDeletion for FilesystemStore {
    /// Deletes every expired session file of this store (and temporary files left over
    /// from a crash); foreign files are left alone.
    async fn delete_expired(&self) -> Result<u64, StoreError> {
        self.delete_expired_with_progress(|_| {}).await
    }
}

impl FilesystemStore {
    /// Deletes every expired session file of this store, as
    /// [`delete_expired`](ExpiredDeletion::delete_expired) does, telling `progress` how
    /// many files went so far after every 1,000 and at the end (for a progress display
    /// in a long sweep). Returns how many went.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`] when the directory cannot be read or a file removed.
    ///
    /// # Examples
    ///
    /// ```
    /// # tokio_test::block_on(async {
    /// let dir = tempfile::tempdir()?;
    /// let store = satchel::FilesystemStore::builder(dir.path()).open()?;
    /// let mut reports = Vec::new();
    /// let deleted = store
    ///     .delete_expired_with_progress(move |so_far| reports.push(so_far))
    ///     .await?;
    /// assert_eq!(deleted, 0);
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn delete_expired_with_progress(
        &self,
        mut progress: impl FnMut(u64) + Send + 'static,
    ) -> Result<u64, StoreError> {
        let inner = Arc::clone(&self.inner);
        blocking(move || {
            inner
                .delete_expired(&mut progress)
                .map_err(StoreError::backend)
        })
        .await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::fs::{self, File, Permissions};
    use std::os::unix::fs::PermissionsExt;

    pub(super) fn in_a_minute() -> SystemTime {
        // Whole seconds, so that every file system stores the time exactly.
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap();
        SystemTime::UNIX_EPOCH + Duration::from_secs(now.as_secs() + 60)
    }

    pub(super) fn at_offset(seconds: i64) -> SystemTime {
        let base = in_a_minute() - Duration::from_secs(60);
        if seconds >= 0 {
            base + Duration::from_secs(seconds.unsigned_abs())
        } else {
            base - Duration::from_secs(seconds.unsigned_abs())
        }
    }

    pub(super) fn setting(key: &str, value: serde_json::Value) -> Changes {
        let mut changes = Changes::default();
        changes.set(key, value);
        changes
    }

    pub(super) fn path_of(store: &FilesystemStore, id: &SessionId) -> PathBuf {
        store.dir().join(store.inner.entry(id).name)
    }

    pub(super) fn session_files(store: &FilesystemStore) -> usize {
        store.inner.scan().unwrap().len()
    }

    #[tokio::test]
    async fn a_saved_session_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let store = FilesystemStore::open(dir.path()).unwrap();
        assert!(format!("{store:?}").contains("mode: 0o600"), "{store:?}");
        let id = SessionId::generate();
        let mut changes = setting("user", json!({"name": "ada", "roles": ["admin"], "n": 3}));
        changes.set("ratio", json!(0.5));
        changes.set_permanent(true);
        let expires = in_a_minute();

        assert_eq!(
            store.save(&id, &changes, expires).await.unwrap(),
            Saved::Stored
        );
        let record = store.load(&id, None).await.unwrap().unwrap();
        assert_eq!(record.data["user"]["roles"][0], "admin");
        assert_eq!(record.data["ratio"], json!(0.5));
        assert_eq!(record.permanent, Some(true));
        assert_eq!(record.expires_at, expires);

        let name = path_of(&store, &id);
        let name = name.file_name().unwrap().to_str().unwrap();
        assert_eq!(name, format!("session%3A{id}"));

        store.delete(&id).await.unwrap();
        assert!(store.load(&id, None).await.unwrap().is_none());
        store.delete(&id).await.unwrap();
    }

    #[tokio::test]
    async fn the_file_mode_is_applied_whatever_the_umask() {
        for mode in [0o640, 0o660, 0o600] {
            let dir = tempfile::tempdir().unwrap();
            let sessions = dir.path().join("sessions");
            let store = FilesystemStore::builder(&sessions)
                .with_mode(mode)
                .open()
                .unwrap();
            let id = SessionId::generate();
            store
                .save(&id, &setting("k", json!(1)), in_a_minute())
                .await
                .unwrap();
            let meta = fs::metadata(path_of(&store, &id)).unwrap();
            assert_eq!(meta.permissions().mode() & 0o777, mode, "{mode:o}");
            let lock = fs::metadata(sessions.join(LOCK_DIR).join("00")).unwrap();
            assert_eq!(lock.permissions().mode() & 0o777, mode, "{mode:o}");
            // Created directories never grant more than the files do.
            let dir_mode = fs::metadata(&sessions).unwrap().permissions().mode() & 0o777;
            assert_eq!(dir_mode & !dir_mode_for(mode), 0, "{dir_mode:o}");
        }
        assert_eq!(dir_mode_for(0o600), 0o700);
        assert_eq!(dir_mode_for(0o640), 0o750);

        let dir = tempfile::tempdir().unwrap();
        for mode in [0o400, 0o1600, 0o200] {
            let error = FilesystemStore::builder(dir.path())
                .with_mode(mode)
                .open()
                .unwrap_err();
            assert!(matches!(error, OpenError::InvalidMode { .. }), "{error}");
        }
    }

    #[test]
    fn open_fails_clearly_when_the_directory_cannot_be_created() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain-file");
        fs::write(&file, b"").unwrap();

        let below = file.join("sessions");
        let error = FilesystemStore::open(&below).unwrap_err();
        assert!(matches!(error, OpenError::CannotCreate { .. }), "{error:?}");
        assert_eq!(
            error.to_string(),
            format!("session directory {below:?} cannot be created")
        );
        assert!(std::error::Error::source(&error).is_some());

        let error = FilesystemStore::open(&file).unwrap_err();
        assert!(matches!(error, OpenError::CannotCreate { .. }), "{error:?}");
    }

    #[test]
    fn open_fails_clearly_when_the_directory_is_not_writable() {
        let dir = tempfile::tempdir().unwrap();
        let locked = dir.path().join("read-only");
        fs::create_dir(&locked).unwrap();
        fs::set_permissions(&locked, Permissions::from_mode(0o500)).unwrap();
        let locked = if File::create(locked.join("x")).is_ok() {
            // A privileged user writes whatever the mode says; procfs refuses even root.
            std::path::PathBuf::from("/proc/self")
        } else {
            locked
        };
        let error = FilesystemStore::open(&locked).unwrap_err();
        assert!(matches!(error, OpenError::NotWritable { .. }), "{error:?}");
        assert!(error.to_string().ends_with("is not writable"), "{error}");
    }

    #[test]
    fn a_key_prefix_too_long_for_file_names_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let error = FilesystemStore::builder(dir.path())
            .with_key_prefix(":".repeat(100))
            .open()
            .unwrap_err();
        assert!(matches!(
            error,
            OpenError::KeyPrefixTooLong { len: 300, max: 212 }
        ));
    }
}
