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
use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::SessionConfig;
use crate::error::{ConfigError, StoreError};
use crate::id::{ID_LEN, SessionId};
use crate::record::{Changes, Data, KeyUpdate, Record, Updated};
use crate::store::{Capabilities, ExpiredDeletion, Saved, SessionStore};

/// Default key prefix of the files (SESSION_KEY_PREFIX).
const DEFAULT_KEY_PREFIX: &str = "session:";
/// Default number of session files before the oldest are pruned (SESSION_FILE_THRESHOLD).
pub const DEFAULT_THRESHOLD: usize = 500;
/// Default permission bits of session files (SESSION_FILE_MODE): readable and writable
/// by the owner only.
pub const DEFAULT_MODE: u32 = 0o600;

/// Number of lock files. The first character of an id carries six random bits, so 64
/// stripes are chosen evenly by that character alone.
const STRIPES: usize = 64;
/// Writes one process runs at once (see [`FilesystemStore::write_blocking`]).
const WRITERS: usize = 2;
/// The subdirectory holding the lock files.
const LOCK_DIR: &str = ".locks";
/// The start of a temporary file's name; random hex digits follow.
const TEMP_PREFIX: &str = ".tmp-";
/// Hex digits after [`TEMP_PREFIX`].
const TEMP_SUFFIX_LEN: usize = 32;
/// A temporary file untouched for this long is left over from a crash.
const STALE_TEMP_AFTER: Duration = Duration::from_secs(600);
/// The longest file name most file systems accept.
const MAX_NAME_LEN: usize = 255;
/// The first field of every session file.
const MAGIC: &str = "satchel-session";
/// The version of the session file format.
const FORMAT_VERSION: u32 = 1;

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

/// The file of one session.
struct Entry {
    name: String,
    stripe: usize,
}

/// Holds one stripe's lock; dropping it closes the file, which releases the lock.
struct StripeLock {
    _file: File,
}

/// What a session file holds, as written.
#[derive(Serialize)]
struct BodyRef<'a> {
    magic: &'a str,
    version: u32,
    permanent: Option<bool>,
    data: &'a Data,
}

/// What a session file holds, as read.
#[derive(Deserialize)]
struct Body {
    magic: String,
    version: u32,
    permanent: Option<bool>,
    data: Data,
}

/// Why a file's content is not a session.
#[derive(Debug, thiserror::Error)]
enum FormatError {
    #[error("not a session file")]
    Foreign,
    #[error("unsupported session file version {0}")]
    Version(u32),
    #[error("session entry is not a regular file")]
    NotAFile,
}

impl FilesystemStore {
    /// Starts configuring a store in `dir`, with the defaults: key prefix `"session:"`,
    /// threshold [`DEFAULT_THRESHOLD`], mode [`DEFAULT_MODE`].
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

    /// Opens the store the configuration describes: SESSION_FILE_DIR,
    /// SESSION_FILE_THRESHOLD, SESSION_FILE_MODE and SESSION_KEY_PREFIX.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// // Not run: the default SESSION_FILE_DIR is relative to the working directory.
    /// use satchel::{FilesystemStore, SessionConfig};
    ///
    /// let store = FilesystemStore::from_config(&SessionConfig::default())?;
    /// # Ok::<_, satchel::ConfigError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ConfigError::Io`] naming SESSION_FILE_DIR when the directory cannot be created
    /// or is not writable; [`ConfigError::Invalid`] when the mode or the key prefix
    /// cannot be used for files.
    pub fn from_config(config: &SessionConfig) -> Result<Self, ConfigError> {
        Self::builder(config.file_dir())
            .with_key_prefix(config.key_prefix())
            .with_threshold(config.file_threshold())
            .with_mode(config.file_mode())
            .open()
            .map_err(|error| match error {
                OpenError::CannotCreate { path, source } => ConfigError::Io {
                    key: "SESSION_FILE_DIR".into(),
                    path: path.display().to_string(),
                    message: format!("cannot be created: {source}"),
                },
                OpenError::NotWritable { path, source } => ConfigError::Io {
                    key: "SESSION_FILE_DIR".into(),
                    path: path.display().to_string(),
                    message: format!("is not writable: {source}"),
                },
                OpenError::InvalidMode { mode } => ConfigError::Invalid {
                    key: "SESSION_FILE_MODE".into(),
                    value: format!("{mode:o}"),
                    expected: "an octal mode within 777 that includes 600".into(),
                },
                OpenError::KeyPrefixTooLong { max, .. } => ConfigError::Invalid {
                    key: "SESSION_KEY_PREFIX".into(),
                    value: config.key_prefix().to_owned(),
                    expected: format!(
                        "a prefix of at most {max} bytes once escaped for file names"
                    ),
                },
            })
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
    /// `"session:"`, stored as `session%3A`). Stores with different prefixes can share a
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

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            writable: true,
            persistent: true,
            shared: true,
        }
    }
}

impl ExpiredDeletion for FilesystemStore {
    /// Deletes every expired session file of this store (and temporary files left over
    /// from a crash); foreign files are left alone.
    async fn delete_expired(&self) -> Result<u64, StoreError> {
        let inner = Arc::clone(&self.inner);
        blocking(move || inner.delete_expired().map_err(StoreError::backend)).await
    }
}

impl Inner {
    fn entry(&self, id: &SessionId) -> Entry {
        let mut name = self.file_prefix.clone();
        id.encode_into(&mut name);
        let stripe = stripe_of(name.get(self.file_prefix.len()..).unwrap_or_default());
        Entry { name, stripe }
    }

    /// The stripe of a file in the directory, when its name is one of this store's
    /// session files.
    fn session_stripe(&self, name: &str) -> Option<usize> {
        let id = name.strip_prefix(self.file_prefix.as_str())?;
        (id.len() == ID_LEN && id.parse::<SessionId>().is_ok()).then(|| stripe_of(id))
    }

    fn lock(&self, stripe: usize) -> Result<StripeLock, StoreError> {
        let file = open_lock_file(&self.lock_dir.join(lock_name(stripe)), self.mode)
            .map_err(StoreError::backend)?;
        file.lock().map_err(StoreError::backend)?;
        Ok(StripeLock { _file: file })
    }

    /// Locks two stripes in a fixed order (once when they are the same), so that two
    /// operations locking the same pair cannot wait on each other.
    fn lock_pair(
        &self,
        a: usize,
        b: usize,
    ) -> Result<(StripeLock, Option<StripeLock>), StoreError> {
        let (first, second) = if a <= b { (a, b) } else { (b, a) };
        let first_lock = self.lock(first)?;
        let second_lock = if second == first {
            None
        } else {
            Some(self.lock(second)?)
        };
        Ok((first_lock, second_lock))
    }

    fn load(
        &self,
        id: &SessionId,
        touch: Option<SystemTime>,
    ) -> Result<Option<Record>, StoreError> {
        let now = SystemTime::now();
        let entry = self.entry(id);
        let path = self.dir.join(&entry.name);
        // A plain read takes no lock: writes replace files by renaming, so this handle
        // sees one whole version. A touch takes the stripe's lock, so that the version
        // it moves is the current one: not a file a log-in has just moved away (whose
        // id must not be re-sent), nor one an update is replacing with the old expiry.
        let _lock = match touch {
            Some(_) => Some(self.lock(entry.stripe)?),
            None => None,
        };
        let Some(file) = open_if_present(&path).map_err(StoreError::backend)? else {
            return Ok(None);
        };
        let Some(mut record) = read_live(&file, now)? else {
            return Ok(None);
        };
        if let Some(at) = touch {
            file.set_modified(at).map_err(StoreError::backend)?;
            record.expires_at = at;
        }
        Ok(Some(record))
    }

    fn save(
        &self,
        id: &SessionId,
        changes: &Changes,
        expires_at: SystemTime,
    ) -> Result<Saved, StoreError> {
        let entry = self.entry(id);
        let path = self.dir.join(&entry.name);
        let (saved, created) = {
            let _lock = self.lock(entry.stripe)?;
            let (existed, base) = self.current(&path)?;
            match changes.apply_to(base, expires_at) {
                Some(record) => {
                    self.write(&path, &record)?;
                    (Saved::Stored, !existed)
                }
                None => {
                    if existed {
                        remove_if_present(&path).map_err(StoreError::backend)?;
                    }
                    (Saved::Empty, false)
                }
            }
        };
        if created {
            self.prune_after_create(&entry.name);
        }
        Ok(saved)
    }

    fn cycle(
        &self,
        old: &SessionId,
        new: &SessionId,
        changes: &Changes,
        expires_at: SystemTime,
    ) -> Result<Saved, StoreError> {
        if old == new {
            return self.save(new, changes, expires_at);
        }
        let (old, new) = (self.entry(old), self.entry(new));
        let old_path = self.dir.join(&old.name);
        let new_path = self.dir.join(&new.name);
        let (saved, created) = {
            let _locks = self.lock_pair(old.stripe, new.stripe)?;
            let (old_existed, base) = self.current(&old_path)?;
            let result = match changes.apply_to(base, expires_at) {
                Some(record) => {
                    let new_existed = new_path.try_exists().map_err(StoreError::backend)?;
                    self.write(&new_path, &record)?;
                    (Saved::Stored, !new_existed && !old_existed)
                }
                None => (Saved::Empty, false),
            };
            remove_if_present(&old_path).map_err(StoreError::backend)?;
            result
        };
        if created {
            self.prune_after_create(&new.name);
        }
        Ok(saved)
    }

    fn update(&self, id: &SessionId, key: &str, update: &KeyUpdate) -> Result<Updated, StoreError> {
        let entry = self.entry(id);
        let path = self.dir.join(&entry.name);
        let _lock = self.lock(entry.stripe)?;
        let Some(mut record) = self.current(&path)?.1 else {
            return Ok(Updated::Missing);
        };
        let before = record.data.get(key).cloned();
        let outcome = update.apply_to(&mut record.data, key);
        if record.data.is_empty() {
            remove_if_present(&path).map_err(StoreError::backend)?;
        } else if record.data.get(key) != before.as_ref() {
            // The record keeps its expiry: only the key changes.
            self.write(&path, &record)?;
        }
        Ok(outcome)
    }

    fn delete(&self, id: &SessionId) -> Result<(), StoreError> {
        let entry = self.entry(id);
        let _lock = self.lock(entry.stripe)?;
        remove_if_present(&self.dir.join(&entry.name)).map_err(StoreError::backend)?;
        Ok(())
    }

    /// For a read-modify-write under the stripe's lock: whether the file exists, and its
    /// record when it is live. A corrupt file is replaced, not fatal: the session starts
    /// over, as it does when it is loaded.
    fn current(&self, path: &Path) -> Result<(bool, Option<Record>), StoreError> {
        let Some(file) = open_if_present(path).map_err(StoreError::backend)? else {
            return Ok((false, None));
        };
        match read_live(&file, SystemTime::now()) {
            Ok(record) => Ok((true, record)),
            Err(StoreError::Decode(error)) => {
                tracing::warn!(%error, "replacing a stored session that could not be decoded");
                Ok((true, None))
            }
            Err(error) => Err(error),
        }
    }

    /// Writes `record` to `path` atomically: a temporary file with the right mode and
    /// expiry, renamed over the target. It is not flushed to disk (see the module
    /// documentation's *Durability*).
    fn write(&self, path: &Path, record: &Record) -> Result<(), StoreError> {
        let bytes = encode(record)?;
        let temp = self.dir.join(temp_name().map_err(StoreError::backend)?);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(self.mode)
            .open(&temp)
            .map_err(StoreError::backend)?;
        let written = (|| {
            file.set_permissions(Permissions::from_mode(self.mode))?;
            file.write_all(&bytes)?;
            file.set_modified(record.expires_at)?;
            fs::rename(&temp, path)
        })();
        if let Err(error) = written {
            let _ = fs::remove_file(&temp);
            return Err(StoreError::backend(error));
        }
        Ok(())
    }

    /// Keeps the directory within the threshold after a new session file `keep` was
    /// written. The save has succeeded already, so a failure here is only logged.
    fn prune_after_create(&self, keep: &str) {
        if self.threshold == 0 {
            return;
        }
        if let Err(error) = self.prune(keep) {
            tracing::warn!(%error, "pruning the session directory failed");
        }
    }

    fn prune(&self, keep: &str) -> io::Result<u64> {
        let names = self.scan()?;
        if names.len() <= self.threshold {
            return Ok(0);
        }
        let now = SystemTime::now();
        let mut kept = 0;
        let mut dated = Vec::with_capacity(names.len());
        for (name, stripe) in names {
            if name == keep {
                kept = 1;
            } else if let Some(at) = modified(&self.dir.join(&name))? {
                dated.push((at, name, stripe));
            }
        }
        // Expired files sort first, then those that expire soonest.
        dated.sort_unstable();
        let excess = (dated.len() + kept).saturating_sub(self.threshold);
        let victims = dated
            .into_iter()
            .enumerate()
            .take_while(|(index, (at, ..))| *index < excess || *at <= now)
            .map(|(_, victim)| victim)
            .collect();
        // A victim rewritten meanwhile (a later expiry) is no longer one.
        self.remove_victims(victims, |seen, at| at == seen || at <= now)
    }

    fn delete_expired(&self) -> io::Result<u64> {
        let now = SystemTime::now();
        let mut victims = Vec::new();
        for (name, stripe) in self.scan()? {
            if let Some(at) = modified(&self.dir.join(&name))?
                && at <= now
            {
                victims.push((at, name, stripe));
            }
        }
        self.remove_victims(victims, |_, at| at <= now)
    }

    /// Deletes `victims` (expiry seen, name, stripe), each under its stripe's lock and
    /// only while `still(seen, current expiry)` holds. Only one lock is held at a time.
    fn remove_victims(
        &self,
        mut victims: Vec<(SystemTime, String, usize)>,
        still: impl Fn(SystemTime, SystemTime) -> bool,
    ) -> io::Result<u64> {
        victims.sort_unstable_by_key(|(_, _, stripe)| *stripe);
        let mut removed = 0;
        let mut held: Option<(usize, StripeLock)> = None;
        for (seen, name, stripe) in victims {
            if held.as_ref().is_none_or(|(locked, _)| *locked != stripe) {
                // Release the previous stripe before waiting for the next.
                drop(held.take());
                held = Some((stripe, self.lock(stripe).map_err(io::Error::other)?));
            }
            let path = self.dir.join(&name);
            if let Some(at) = modified(&path)?
                && still(seen, at)
                && remove_if_present(&path)?
            {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Lists this store's session files (name and stripe), and deletes temporary files
    /// left over from a crash on the way. Foreign files are skipped.
    fn scan(&self) -> io::Result<Vec<(String, usize)>> {
        let mut found = Vec::new();
        for item in fs::read_dir(&self.dir)? {
            let item = item?;
            let name = item.file_name();
            let Some(name) = name.to_str() else {
                continue;
            };
            if let Some(stripe) = self.session_stripe(name) {
                found.push((name.to_owned(), stripe));
            } else if is_temp_name(name) {
                self.remove_if_stale(&item.path());
            }
        }
        Ok(found)
    }

    /// Deletes a temporary file whose status has not changed for a while: a write in
    /// progress changes it within moments. Errors are ignored; another process may have
    /// finished or removed it.
    fn remove_if_stale(&self, path: &Path) {
        let Ok(meta) = fs::symlink_metadata(path) else {
            return;
        };
        let changed = u64::try_from(meta.ctime())
            .ok()
            .and_then(|secs| SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(secs)))
            .and_then(|at| {
                let nanos = u32::try_from(meta.ctime_nsec()).unwrap_or(0);
                at.checked_add(Duration::from_nanos(u64::from(nanos)))
            });
        let stale = changed.is_some_and(|at| {
            SystemTime::now()
                .duration_since(at)
                .is_ok_and(|age| age > self.stale_temp_after)
        });
        if stale {
            let _ = fs::remove_file(path);
        }
    }
}

/// Reads an open session file: `None` when it has expired at `now`.
fn read_live(file: &File, now: SystemTime) -> Result<Option<Record>, StoreError> {
    let meta = file.metadata().map_err(StoreError::backend)?;
    if !meta.is_file() {
        return Err(StoreError::decode(FormatError::NotAFile));
    }
    let expires_at = meta.modified().map_err(StoreError::backend)?;
    if expires_at <= now {
        return Ok(None);
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    let mut reader = file;
    reader
        .read_to_end(&mut bytes)
        .map_err(StoreError::backend)?;
    decode(&bytes, expires_at).map(Some)
}

fn encode(record: &Record) -> Result<Vec<u8>, StoreError> {
    rmp_serde::to_vec_named(&BodyRef {
        magic: MAGIC,
        version: FORMAT_VERSION,
        permanent: record.permanent,
        data: &record.data,
    })
    .map_err(StoreError::encode)
}

fn decode(bytes: &[u8], expires_at: SystemTime) -> Result<Record, StoreError> {
    let body: Body = rmp_serde::from_slice(bytes).map_err(StoreError::decode)?;
    if body.magic != MAGIC {
        return Err(StoreError::decode(FormatError::Foreign));
    }
    if body.version != FORMAT_VERSION {
        return Err(StoreError::decode(FormatError::Version(body.version)));
    }
    Ok(Record {
        data: body.data,
        expires_at,
        permanent: body.permanent,
        version: None,
    })
}

/// The modification time (the expiry) of the file at `path`, `None` when it is gone.
fn modified(path: &Path) -> io::Result<Option<SystemTime>> {
    match fs::symlink_metadata(path) {
        Ok(meta) => meta.modified().map(Some),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error),
    }
}

fn open_if_present(path: &Path) -> io::Result<Option<File>> {
    match File::open(path) {
        Ok(file) => Ok(Some(file)),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error),
    }
}

/// Removes the file at `path`; whether it was there.
fn remove_if_present(path: &Path) -> io::Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(error) => Err(error),
    }
}

/// The stripe of an id, from its text: the first character, as a base64url digit.
fn stripe_of(id: &str) -> usize {
    let digit = match id.as_bytes().first() {
        Some(&c @ b'A'..=b'Z') => c - b'A',
        Some(&c @ b'a'..=b'z') => c - b'a' + 26,
        Some(&c @ b'0'..=b'9') => c - b'0' + 52,
        Some(b'-') => 62,
        _ => 63,
    };
    usize::from(digit) % STRIPES
}

fn lock_name(stripe: usize) -> String {
    format!("{stripe:02}")
}

/// Opens a lock file, creating it when it has gone missing. Locking needs no write
/// access, so a lock file is opened for reading.
fn open_lock_file(path: &Path, mode: u32) -> io::Result<File> {
    match File::open(path) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            create_lock_file(path, mode)?;
            File::open(path)
        }
        opened => opened,
    }
}

/// Creates a lock file with `mode` unless it exists.
fn create_lock_file(path: &Path, mode: u32) -> io::Result<()> {
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
    {
        Ok(file) => file.set_permissions(Permissions::from_mode(mode)),
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(error),
    }
}

/// Escapes a key prefix for file names: bytes outside `[A-Za-z0-9._-]` become `%XX`.
fn escape_prefix(prefix: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(prefix.len());
    for byte in prefix.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-') {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
    }
    out
}

fn random_hex() -> io::Result<String> {
    let mut bytes = [0u8; TEMP_SUFFIX_LEN / 2];
    getrandom::fill(&mut bytes).map_err(|error| io::Error::other(error.to_string()))?;
    Ok(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
}

fn temp_name() -> io::Result<String> {
    Ok(format!("{TEMP_PREFIX}{}", random_hex()?))
}

fn is_temp_name(name: &str) -> bool {
    name.strip_prefix(TEMP_PREFIX).is_some_and(|suffix| {
        suffix.len() == TEMP_SUFFIX_LEN
            && suffix
                .bytes()
                .all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// Directory permissions for a file mode: search permission wherever read is granted.
fn dir_mode_for(mode: u32) -> u32 {
    mode | ((mode & 0o444) >> 2)
}

fn create_dir(path: &Path, mode: u32) -> Result<(), OpenError> {
    let cannot = |source| OpenError::CannotCreate {
        path: path.to_owned(),
        source,
    };
    match fs::metadata(path) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(cannot(io::Error::from(io::ErrorKind::NotADirectory))),
        Err(error) if error.kind() == io::ErrorKind::NotFound => DirBuilder::new()
            .recursive(true)
            .mode(mode)
            .create(path)
            .map_err(cannot),
        Err(error) => Err(cannot(error)),
    }
}

/// Session file names are session ids: warns when users who may not read the files can
/// still list their names.
fn warn_if_listable(dir: &Path, mode: u32) {
    if let Ok(meta) = fs::metadata(dir) {
        let listable = meta.permissions().mode() & 0o044 & !(mode & 0o044);
        if listable != 0 {
            tracing::warn!(
                directory = %dir.display(),
                "the session directory can be listed by users who cannot read session files, \
                 and file names are session ids"
            );
        }
    }
}

/// Creates and removes a file, as the store will.
fn probe(dir: &Path, mode: u32) -> io::Result<()> {
    // A temporary file's name, so that a crash right here leaves nothing lasting.
    let path = dir.join(temp_name()?);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&path)?;
    let written = file.write_all(MAGIC.as_bytes());
    drop(file);
    let removed = fs::remove_file(&path);
    written.and(removed)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;
    use tokio::task::JoinSet;

    fn in_a_minute() -> SystemTime {
        // Whole seconds, so that every file system stores the time exactly.
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap();
        SystemTime::UNIX_EPOCH + Duration::from_secs(now.as_secs() + 60)
    }

    fn at_offset(seconds: i64) -> SystemTime {
        let base = in_a_minute() - Duration::from_secs(60);
        if seconds >= 0 {
            base + Duration::from_secs(seconds.unsigned_abs())
        } else {
            base - Duration::from_secs(seconds.unsigned_abs())
        }
    }

    fn setting(key: &str, value: serde_json::Value) -> Changes {
        let mut changes = Changes::default();
        changes.set(key, value);
        changes
    }

    fn path_of(store: &FilesystemStore, id: &SessionId) -> PathBuf {
        store.dir().join(store.inner.entry(id).name)
    }

    fn session_files(store: &FilesystemStore) -> usize {
        store.inner.scan().unwrap().len()
    }

    #[test]
    fn values_round_trip_through_messagepack() {
        let value = json!({
            "null": null,
            "flags": [true, false],
            "ints": [0, -1, i64::MIN, u64::MAX, 255, 65_536],
            "floats": [1.5, -0.25, 1.0, 1e300],
            "text": "héllo \u{1F600}",
            "nested": {"list": [[], {}, [{"deep": [1, "two", null]}]]},
        });
        let mut data = Data::new();
        data.insert("value".into(), value);
        data.insert("empty".into(), json!(""));
        let mut record = Record::new(data, in_a_minute());
        record.permanent = Some(false);
        let decoded = decode(&encode(&record).unwrap(), record.expires_at).unwrap();
        assert_eq!(decoded, record);
    }

    #[test]
    fn key_prefixes_are_escaped_for_file_names() {
        assert_eq!(escape_prefix("session:"), "session%3A");
        assert_eq!(escape_prefix("a/../b%"), "a%2F..%2Fb%25");
        assert_eq!(escape_prefix("é"), "%C3%A9");
        assert_eq!(escape_prefix("Ok.name_-9"), "Ok.name_-9");
        assert_eq!(escape_prefix(""), "");
    }

    #[test]
    fn every_stripe_is_used_and_stays_in_range() {
        let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let stripes: std::collections::BTreeSet<usize> = alphabet
            .chars()
            .map(|c| stripe_of(&c.to_string()))
            .collect();
        assert_eq!(stripes.len(), STRIPES);
        assert!(stripes.iter().all(|s| *s < STRIPES));
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
    async fn a_touch_extends_the_expiry_without_rewriting_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = FilesystemStore::open(dir.path()).unwrap();
        let id = SessionId::generate();
        store
            .save(&id, &setting("k", json!("v")), in_a_minute())
            .await
            .unwrap();
        let path = path_of(&store, &id);
        let bytes = fs::read(&path).unwrap();
        let inode = fs::metadata(&path).unwrap().ino();

        let later = in_a_minute() + Duration::from_secs(3_600);
        let record = store.load(&id, Some(later)).await.unwrap().unwrap();
        assert_eq!(record.expires_at, later);
        assert_eq!(fs::read(&path).unwrap(), bytes);
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(meta.ino(), inode);
        assert_eq!(meta.modified().unwrap(), later);

        // A touch sets the expiry: a shorter lifetime configured later takes effect.
        let sooner = in_a_minute();
        let record = store.load(&id, Some(sooner)).await.unwrap().unwrap();
        assert_eq!(record.expires_at, sooner);
    }

    #[tokio::test]
    async fn an_expired_file_is_not_loaded_nor_used_as_a_base() {
        let dir = tempfile::tempdir().unwrap();
        let store = FilesystemStore::open(dir.path()).unwrap();
        let id = SessionId::generate();
        store
            .save(&id, &setting("old", json!(1)), in_a_minute())
            .await
            .unwrap();
        File::open(path_of(&store, &id))
            .unwrap()
            .set_modified(at_offset(-5))
            .unwrap();
        assert!(
            store
                .load(&id, Some(in_a_minute()))
                .await
                .unwrap()
                .is_none()
        );

        store
            .save(&id, &setting("new", json!(2)), in_a_minute())
            .await
            .unwrap();
        let record = store.load(&id, None).await.unwrap().unwrap();
        assert_eq!(record.data.keys().collect::<Vec<_>>(), ["new"]);
    }

    #[tokio::test]
    async fn a_corrupt_file_is_a_decode_error_and_foreign_files_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let store = FilesystemStore::builder(dir.path())
            .with_threshold(1)
            .open()
            .unwrap();
        let corrupt = SessionId::generate();
        let path = path_of(&store, &corrupt);
        fs::write(&path, b"\xc1 not messagepack").unwrap();
        File::open(&path)
            .unwrap()
            .set_modified(in_a_minute())
            .unwrap();
        let error = store.load(&corrupt, None).await.unwrap_err();
        assert!(matches!(error, StoreError::Decode(_)), "{error:?}");
        // Valid MessagePack that is not a session file is just as foreign.
        fs::write(&path, rmp_serde::to_vec_named(&json!({"a": 1})).unwrap()).unwrap();
        File::open(&path)
            .unwrap()
            .set_modified(in_a_minute())
            .unwrap();
        let error = store.load(&corrupt, None).await.unwrap_err();
        assert!(matches!(error, StoreError::Decode(_)), "{error:?}");
        // A save replaces it.
        store
            .save(&corrupt, &setting("fresh", json!(true)), in_a_minute())
            .await
            .unwrap();
        assert!(store.load(&corrupt, None).await.unwrap().is_some());
        fs::remove_file(&path).unwrap();

        let other = SessionId::generate().to_string();
        let foreign = [
            "README".to_owned(),
            ".hidden".to_owned(),
            format!("session%3A{}", &other[..42]),
            format!("session%3A{other}x"),
            format!("other%3A{other}"),
            other,
            format!("{TEMP_PREFIX}not-ours"),
        ];
        for name in &foreign {
            fs::write(dir.path().join(name), b"foreign").unwrap();
            File::open(dir.path().join(name))
                .unwrap()
                .set_modified(at_offset(-100))
                .unwrap();
        }
        assert_eq!(session_files(&store), 0);

        let first = SessionId::generate();
        let second = SessionId::generate();
        store
            .save(&first, &setting("k", json!(1)), in_a_minute())
            .await
            .unwrap();
        assert_eq!(session_files(&store), 1);
        store
            .save(&second, &setting("k", json!(2)), in_a_minute())
            .await
            .unwrap();
        assert_eq!(session_files(&store), 1);
        assert!(store.load(&second, None).await.unwrap().is_some());
        assert_eq!(store.delete_expired().await.unwrap(), 0);
        for name in &foreign {
            assert!(dir.path().join(name).exists(), "{name} was removed");
        }
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

    #[tokio::test]
    async fn pruning_deletes_expired_files_first_then_those_expiring_soonest() {
        let dir = tempfile::tempdir().unwrap();
        let store = FilesystemStore::builder(dir.path())
            .with_threshold(3)
            .open()
            .unwrap();
        let save = |id: SessionId, at: SystemTime| {
            let store = store.clone();
            async move { store.save(&id, &setting("k", json!(1)), at).await.unwrap() }
        };
        let present = |id: &SessionId| path_of(&store, id).exists();
        let [expired_a, expired_b, a, b, c, d] = std::array::from_fn(|_| SessionId::generate());

        save(expired_a, at_offset(-20)).await;
        save(expired_b, at_offset(-10)).await;
        save(a, at_offset(100)).await;
        assert_eq!(session_files(&store), 3);

        // One too many: both expired files go, though removing one would do.
        save(b, at_offset(200)).await;
        assert!(!present(&expired_a) && !present(&expired_b));
        assert!(present(&a) && present(&b));

        save(c, at_offset(300)).await;
        assert_eq!(session_files(&store), 3);

        // `d` expires soonest of all, but is the file just written: `a` goes instead.
        save(d, at_offset(50)).await;
        assert_eq!(session_files(&store), 3);
        assert!(!present(&a));
        assert!(present(&b) && present(&c) && present(&d));

        // Rewriting an existing session does not prune.
        save(b, at_offset(10)).await;
        assert_eq!(session_files(&store), 3);
    }

    #[tokio::test]
    async fn delete_expired_removes_expired_sessions_and_stale_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = FilesystemStore::open(dir.path()).unwrap();
        let [live, gone_a, gone_b] = std::array::from_fn(|_| SessionId::generate());
        for (id, at) in [(live, 100), (gone_a, -1), (gone_b, -100)] {
            store
                .save(&id, &setting("k", json!(1)), at_offset(at))
                .await
                .unwrap();
        }
        let temp = dir.path().join(temp_name().unwrap());
        fs::write(&temp, b"half").unwrap();

        assert_eq!(store.delete_expired().await.unwrap(), 2);
        assert!(path_of(&store, &live).exists());
        assert!(
            temp.exists(),
            "a fresh temporary file may be a write in progress"
        );

        Arc::get_mut(&mut store.inner).unwrap().stale_temp_after = Duration::ZERO;
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(store.delete_expired().await.unwrap(), 0);
        assert!(!temp.exists());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn fifty_concurrent_saves_on_one_session_all_land() {
        let dir = tempfile::tempdir().unwrap();
        let store = FilesystemStore::open(dir.path()).unwrap();
        let id = SessionId::generate();
        let mut tasks = JoinSet::new();
        for n in 0..50 {
            let store = store.clone();
            tasks.spawn(async move {
                store
                    .save(&id, &setting(&format!("key{n}"), json!(n)), in_a_minute())
                    .await
            });
        }
        while let Some(saved) = tasks.join_next().await {
            assert_eq!(saved.unwrap().unwrap(), Saved::Stored);
        }
        let record = store.load(&id, None).await.unwrap().unwrap();
        assert_eq!(record.data.len(), 50);
        assert_eq!(record.data["key49"], json!(49));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_stores_sharing_a_directory_lose_no_updates() {
        let dir = tempfile::tempdir().unwrap();
        let stores = [
            FilesystemStore::open(dir.path()).unwrap(),
            FilesystemStore::open(dir.path()).unwrap(),
        ];
        let id = SessionId::generate();
        let mut tasks = JoinSet::new();
        for n in 0..50_usize {
            let store = stores[n % 2].clone();
            tasks.spawn(async move {
                store
                    .save(&id, &setting(&format!("key{n}"), json!(n)), in_a_minute())
                    .await
            });
        }
        while let Some(saved) = tasks.join_next().await {
            saved.unwrap().unwrap();
        }
        for store in &stores {
            let record = store.load(&id, None).await.unwrap().unwrap();
            assert_eq!(record.data.len(), 50);
        }
    }

    #[tokio::test]
    async fn cycle_moves_the_data_and_removes_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = FilesystemStore::open(dir.path()).unwrap();
        let (old, new) = (SessionId::generate(), SessionId::generate());
        store
            .save(&old, &setting("a", json!(1)), in_a_minute())
            .await
            .unwrap();
        let saved = store
            .cycle(&old, &new, &setting("b", json!(2)), in_a_minute())
            .await
            .unwrap();
        assert_eq!(saved, Saved::Stored);
        assert!(!path_of(&store, &old).exists());
        assert!(store.load(&old, None).await.unwrap().is_none());
        let record = store.load(&new, None).await.unwrap().unwrap();
        assert_eq!(record.data["a"], json!(1));
        assert_eq!(record.data["b"], json!(2));

        // Cycling onto the same id is a plain save.
        store
            .cycle(&new, &new, &setting("c", json!(3)), in_a_minute())
            .await
            .unwrap();
        assert_eq!(store.load(&new, None).await.unwrap().unwrap().data.len(), 3);
    }

    #[tokio::test]
    async fn a_save_that_empties_the_record_deletes_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = FilesystemStore::open(dir.path()).unwrap();
        let id = SessionId::generate();
        store
            .save(&id, &setting("a", json!(1)), in_a_minute())
            .await
            .unwrap();
        let mut changes = Changes::default();
        changes.remove("a");
        assert_eq!(
            store.save(&id, &changes, in_a_minute()).await.unwrap(),
            Saved::Empty
        );
        assert!(!path_of(&store, &id).exists());
        assert_eq!(
            store.save(&id, &changes, in_a_minute()).await.unwrap(),
            Saved::Empty
        );
        assert!(!path_of(&store, &id).exists());
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
