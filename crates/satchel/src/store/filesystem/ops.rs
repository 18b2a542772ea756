//! The operations on one session's file (load, save, cycle, update, delete), each a
//! read-modify-write under the stripe's lock, with atomic writes through a renamed
//! temporary file.

use std::fs::{self, OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::SystemTime;

use crate::error::StoreError;
use crate::id::{ID_LEN, SessionId};
use crate::record::{Changes, KeyUpdate, Record, Updated};
use crate::store::Saved;

use super::Inner;
use super::format::{encode, read_live};
use super::locking::stripe_of;
use super::paths::{open_if_present, remove_if_present, temp_name};

/// The file of one session.
pub(super) struct Entry {
    pub(super) name: String,
    stripe: usize,
}

impl Inner {
    pub(super) fn entry(&self, id: &SessionId) -> Entry {
        let mut name = self.file_prefix.clone();
        id.encode_into(&mut name);
        let stripe = stripe_of(name.get(self.file_prefix.len()..).unwrap_or_default());
        Entry { name, stripe }
    }

    /// The stripe of a file in the directory, when its name is one of this store's
    /// session files.
    pub(super) fn session_stripe(&self, name: &str) -> Option<usize> {
        let id = name.strip_prefix(self.file_prefix.as_str())?;
        (id.len() == ID_LEN && id.parse::<SessionId>().is_ok()).then(|| stripe_of(id))
    }

    pub(super) fn load(
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

    pub(super) fn save(
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
            match changes.apply_to(base, expires_at)? {
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

    pub(super) fn cycle(
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
            // Refused: the entry stays under the old id, as it was.
            let result = match changes.apply_to(base, expires_at)? {
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

    pub(super) fn update(
        &self,
        id: &SessionId,
        key: &str,
        update: &KeyUpdate,
    ) -> Result<Updated, StoreError> {
        let entry = self.entry(id);
        let path = self.dir.join(&entry.name);
        let _lock = self.lock(entry.stripe)?;
        let Some(mut record) = self.current(&path)?.1 else {
            return Ok(Updated::Missing);
        };
        let before = record.data.get(key).cloned();
        let outcome = update.apply_to(&mut record.data, key)?;
        if record.data.is_empty() {
            remove_if_present(&path).map_err(StoreError::backend)?;
        } else if record.data.get(key) != before.as_ref() {
            // The record keeps its expiry: only the key changes.
            self.write(&path, &record)?;
        }
        Ok(outcome)
    }

    pub(super) fn delete(&self, id: &SessionId) -> Result<(), StoreError> {
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
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::fs::File;
    use std::os::unix::fs::MetadataExt;
    use std::time::Duration;

    use crate::store::filesystem::FilesystemStore;
    use crate::store::filesystem::paths::TEMP_PREFIX;
    use crate::store::filesystem::tests::{
        at_offset, in_a_minute, path_of, session_files, setting,
    };
    use crate::store::{ExpiredDeletion, SessionStore};

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
}
