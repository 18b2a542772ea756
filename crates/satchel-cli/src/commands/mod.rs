//! One module per subcommand.

pub(crate) mod cleanup;
pub(crate) mod config;
mod handlers;
pub(crate) mod keygen;
pub(crate) mod migrate;
pub(crate) mod serve;

use std::path::Path;

use anyhow::Context as _;
use satchel::{SessionConfig, SessionType};

/// The settings for the demo: defaults < file < environment, except that the demo runs
/// on the filesystem store when neither names SESSION_TYPE (the library's default stays
/// `null`, which would make a demo of nothing).
pub(crate) fn demo_config(file: Option<&Path>) -> anyhow::Result<SessionConfig> {
    let config = SessionConfig::load(file)?;
    let in_env = std::env::var_os("SESSION_TYPE").is_some();
    let in_file = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            text.parse::<toml::Table>()
                .map(|table| table.contains_key("SESSION_TYPE"))
                .unwrap_or(false)
        }
        None => false,
    };
    Ok(if in_env || in_file {
        config
    } else {
        config.with_session_type(SessionType::Filesystem)
    })
}
