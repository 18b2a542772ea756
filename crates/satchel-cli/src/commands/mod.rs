//! One module per subcommand.

pub(crate) mod check;
pub(crate) mod cleanup;
pub(crate) mod config;
mod handlers;
pub(crate) mod keygen;
pub(crate) mod migrate;
pub(crate) mod serve;
pub(crate) mod sessions;

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

/// The store the settings name, for people: `filesystem in flask_sessions`, `redis at
/// redis://127.0.0.1:6379/0` (password masked; an unset address shows the one used).
pub(crate) fn describe_store(config: &SessionConfig) -> String {
    match config.session_type() {
        SessionType::Filesystem => format!("filesystem in {}", config.file_dir().display()),
        other => match store_address(config) {
            Some(address) => format!("{other} at {address}"),
            None => other.to_string(),
        },
    }
}

/// Where the networked store connects, with any password masked (as `satchel config`
/// shows it; an unset key shows the address it defaults to).
fn store_address(config: &SessionConfig) -> Option<String> {
    let key = match config.session_type() {
        SessionType::Redis => "SESSION_REDIS",
        SessionType::Memcached => "SESSION_MEMCACHED",
        SessionType::MongoDb => "SESSION_MONGODB",
        SessionType::Sql => "SESSION_SQL_URL",
        _ => return None,
    };
    let shown = satchel::config::setting(key)?.shown(config);
    let address = shown
        .strip_prefix("<unset: ")
        .and_then(|rest| rest.strip_suffix('>'))
        .map_or(shown.clone(), str::to_owned);
    Some(address)
}
