//! Keeping the directory within its threshold after a new session file, sweeping out
//! expired sessions, and listing the store's own files (removing stale temporary files on
//! the way).

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::Inner;
use super::locking::StripeLock;
use super::paths::{is_temp_name, modified, remove_if_present};

/// How many files a sweep deletes between two reports of its progress.
const PROGRESS_EVERY: u64 = 1000;

impl Inner {
    /// Keeps the directory within the threshold after a new session file `keep` was
    /// written. The save has succeeded already, so a failure here is only logged.
    pub(super) fn prune_after_create(&self, keep: &str) {
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
        self.remove_victims(victims, |seen, at| at == seen || at <= now, &mut |_| {})
    }

    /// Deletes the expired session files, telling `progress` the number deleted so far
    /// after every [`PROGRESS_EVERY`] files and at the end.
    pub(super) fn delete_expired(&self, progress: &mut dyn FnMut(u64)) -> io::Result<u64> {
        let now = SystemTime::now();
        let mut victims = Vec::new();
        for (name, stripe) in self.scan()? {
            if let Some(at) = modified(&self.dir.join(&name))?
                && at <= now
            {
                victims.push((at, name, stripe));
            }
        }
        let removed = self.remove_victims(victims, |_, at| at <= now, progress)?;
        progress(removed);
        Ok(removed)
    }

    /// Deletes `victims` (expiry seen, name, stripe), each under its stripe's lock and
    /// only while `still(seen, current expiry)` holds. Only one lock is held at a time.
    fn remove_victims(
        &self,
        mut victims: Vec<(SystemTime, String, usize)>,
        still: impl Fn(SystemTime, SystemTime) -> bool,
        progress: &mut dyn FnMut(u64),
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
                if removed % PROGRESS_EVERY == 0 {
                    progress(removed);
                }
            }
        }
        Ok(removed)
    }

    /// Lists this store's session files (name and stripe), and deletes temporary files
    /// left over from a crash on the way. Foreign files are skipped.
    pub(super) fn scan(&self) -> io::Result<Vec<(String, usize)>> {
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Arc;

    use crate::id::SessionId;
    use crate::store::filesystem::FilesystemStore;
    use crate::store::filesystem::paths::temp_name;
    use crate::store::filesystem::tests::{at_offset, path_of, session_files, setting};
    use crate::store::{ExpiredDeletion, SessionStore};

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
}
