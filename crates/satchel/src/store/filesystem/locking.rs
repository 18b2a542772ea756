//! Stripe locks: 64 lock files, chosen by the session id, each held with an exclusive
//! advisory lock (`flock`) around every read-modify-write of the sessions it covers.

use std::fs::{File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::error::StoreError;

use super::Inner;

/// Number of lock files. The first character of an id carries six random bits, so 64
/// stripes are chosen evenly by that character alone.
pub(super) const STRIPES: usize = 64;
/// The subdirectory holding the lock files.
pub(super) const LOCK_DIR: &str = ".locks";

/// Holds one stripe's lock; dropping it closes the file, which releases the lock.
pub(super) struct StripeLock {
    _file: File,
}

impl Inner {
    pub(super) fn lock(&self, stripe: usize) -> Result<StripeLock, StoreError> {
        let file = open_lock_file(&self.lock_dir.join(lock_name(stripe)), self.mode)
            .map_err(StoreError::backend)?;
        file.lock().map_err(StoreError::backend)?;
        Ok(StripeLock { _file: file })
    }

    /// Locks two stripes in a fixed order (once when they are the same), so that two
    /// operations locking the same pair cannot wait on each other.
    pub(super) fn lock_pair(
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
}

/// The stripe of an id, from its text: the first character, as a base64url digit.
pub(super) fn stripe_of(id: &str) -> usize {
    let digit = match id.as_bytes().first() {
        Some(&c @ b'A'..=b'Z') => c - b'A',
        Some(&c @ b'a'..=b'z') => c - b'a' + 26,
        Some(&c @ b'0'..=b'9') => c - b'0' + 52,
        Some(b'-') => 62,
        _ => 63,
    };
    usize::from(digit) % STRIPES
}

pub(super) fn lock_name(stripe: usize) -> String {
    format!("{stripe:02}")
}

/// Opens a lock file, creating it (and the lock directory) when it has gone missing: a
/// store directory emptied or made again while the store runs gets its locks back with
/// its first write. The store's own directory is never made again here: when it is gone
/// (an unmounted volume, say), writes keep failing rather than going elsewhere. Locking
/// needs no write access, so a lock file is opened for reading.
fn open_lock_file(path: &Path, mode: u32) -> io::Result<File> {
    match File::open(path) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            match create_lock_file(path, mode) {
                Err(error) if error.kind() == io::ErrorKind::NotFound => {
                    if let Some(lock_dir) = path.parent() {
                        create_lock_dir(lock_dir, mode)?;
                    }
                    create_lock_file(path, mode)?;
                }
                created => created?,
            }
            File::open(path)
        }
        opened => opened,
    }
}

/// Creates the lock directory inside the store's directory (which must exist) unless it
/// exists.
fn create_lock_dir(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    match std::fs::DirBuilder::new()
        .mode(super::paths::dir_mode_for(mode))
        .create(path)
    {
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        created => created,
    }
}

/// Creates a lock file with `mode` unless it exists.
pub(super) fn create_lock_file(path: &Path, mode: u32) -> io::Result<()> {
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;
    use tokio::task::JoinSet;

    use crate::id::SessionId;
    use crate::store::filesystem::FilesystemStore;
    use crate::store::filesystem::tests::{in_a_minute, setting};
    use crate::store::{Saved, SessionStore};

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
    async fn a_directory_made_again_gets_its_locks_back_and_a_missing_one_stays_missing() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("sessions");
        let store = FilesystemStore::open(&dir).unwrap();
        let id = SessionId::generate();
        std::fs::remove_dir_all(&dir).unwrap();
        let refused = store
            .save(&id, &setting("a", json!(1)), in_a_minute())
            .await;
        assert!(
            matches!(refused, Err(crate::StoreError::Backend(_))),
            "{refused:?}"
        );
        assert!(!dir.exists(), "the store's own directory is not made again");

        std::fs::create_dir(&dir).unwrap();
        let saved = store
            .save(&id, &setting("a", json!(1)), in_a_minute())
            .await;
        assert_eq!(saved.unwrap(), Saved::Stored);
        assert_eq!(store.load(&id, None).await.unwrap().unwrap().data["a"], 1);
        assert!(
            dir.join(LOCK_DIR)
                .join(lock_name(stripe_of(&id.to_string())))
                .exists()
        );
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
}
