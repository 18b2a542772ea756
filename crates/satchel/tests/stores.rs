//! The conformance suite on every store of this crate.

#![cfg(feature = "testing")]

use satchel::MemoryStore;

satchel::conformance!(memory, async { Some(MemoryStore::default()) });

#[cfg(feature = "filesystem")]
mod fs {
    use std::sync::OnceLock;

    fn dir() -> &'static std::path::Path {
        static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
        DIR.get_or_init(|| tempfile::tempdir().expect("a temporary directory"))
            .path()
    }

    async fn store() -> Option<satchel::FilesystemStore> {
        let config = satchel::SessionConfig::default()
            .with_file_dir(dir())
            .with_file_threshold(10_000);
        Some(satchel::FilesystemStore::from_config(&config).expect("the store opens"))
    }

    satchel::conformance!(filesystem, store());
}
