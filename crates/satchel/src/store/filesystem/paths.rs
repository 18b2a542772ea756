//! File and directory helpers: reading a file's expiry, opening and removing files that
//! may be gone, escaping the key prefix, naming temporary files, and creating and
//! probing the directory.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::SystemTime;

use super::OpenError;
use super::format::MAGIC;

/// The start of a temporary file's name; random hex digits follow.
pub(super) const TEMP_PREFIX: &str = ".tmp-";
/// Hex digits after [`TEMP_PREFIX`].
const TEMP_SUFFIX_LEN: usize = 32;

/// The modification time (the expiry) of the file at `path`, `None` when it is gone.
pub(super) fn modified(path: &Path) -> io::Result<Option<SystemTime>> {
    match fs::symlink_metadata(path) {
        Ok(meta) => meta.modified().map(Some),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error),
    }
}

pub(super) fn open_if_present(path: &Path) -> io::Result<Option<File>> {
    match File::open(path) {
        Ok(file) => Ok(Some(file)),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error),
    }
}

/// Removes the file at `path`; whether it was there.
pub(super) fn remove_if_present(path: &Path) -> io::Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(error) => Err(error),
    }
}

/// Escapes a key prefix for file names: bytes outside `[A-Za-z0-9._-]` become `%XX`.
pub(super) fn escape_prefix(prefix: &str) -> String {
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

pub(super) fn temp_name() -> io::Result<String> {
    Ok(format!("{TEMP_PREFIX}{}", random_hex()?))
}

pub(super) fn is_temp_name(name: &str) -> bool {
    name.strip_prefix(TEMP_PREFIX).is_some_and(|suffix| {
        suffix.len() == TEMP_SUFFIX_LEN
            && suffix
                .bytes()
                .all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// Directory permissions for a file mode: search permission wherever read is granted.
pub(super) fn dir_mode_for(mode: u32) -> u32 {
    mode | ((mode & 0o444) >> 2)
}

pub(super) fn create_dir(path: &Path, mode: u32) -> Result<(), OpenError> {
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
pub(super) fn warn_if_listable(dir: &Path, mode: u32) {
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
pub(super) fn probe(dir: &Path, mode: u32) -> io::Result<()> {
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
mod tests {
    use super::*;

    #[test]
    fn key_prefixes_are_escaped_for_file_names() {
        assert_eq!(escape_prefix("session:"), "session%3A");
        assert_eq!(escape_prefix("a/../b%"), "a%2F..%2Fb%25");
        assert_eq!(escape_prefix("é"), "%C3%A9");
        assert_eq!(escape_prefix("Ok.name_-9"), "Ok.name_-9");
        assert_eq!(escape_prefix(""), "");
    }
}
