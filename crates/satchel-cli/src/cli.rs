//! Command-line arguments.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Server-side HTTP sessions: the Satchel demo server and tools.
///
/// Session settings come from SESSION_* environment variables and an optional TOML file
/// with the same keys (the environment wins).
#[derive(Debug, Parser)]
#[command(name = "satchel", version, about)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Serve the demo page and the benchmark HTTP contract.
    ///
    /// Worker threads: TOKIO_WORKER_THREADS (default: one per CPU core). Stops cleanly
    /// on Ctrl-C or SIGTERM.
    Serve(ServeArgs),
    /// Print the session settings in force, after the file and the environment.
    Config(ConfigArgs),
    /// Check that the settings are valid and the store works: open it and read from it
    /// (exit status 0: usable, 2: bad settings, 1: the store fails).
    Check(crate::commands::check::CheckArgs),
    /// Create the SQL session table and its expiry index, if missing (SESSION_SQL_URL).
    Migrate(crate::commands::migrate::MigrateArgs),
    /// Delete expired sessions from the SQL table, in batches, showing progress.
    Cleanup(crate::commands::cleanup::CleanupArgs),
    /// A user's sessions on the store the settings select: list, count, show, revoke
    /// one, revoke them all ("log out everywhere"). Sessions are named by fingerprint,
    /// never by id.
    Sessions(crate::commands::sessions::SessionsArgs),
    /// Print a new random key for SECRET_KEY or SESSION_DATA_KEY (48 bytes from the OS,
    /// base64url).
    Keygen,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub(crate) bind: SocketAddr,
    /// TOML file with SESSION_* settings (the environment overrides it).
    #[arg(long)]
    pub(crate) config: Option<PathBuf>,
    /// The web framework that serves the app (same pages, same sessions).
    #[arg(long, value_enum, default_value_t = Framework::Axum)]
    pub(crate) framework: Framework,
    /// Also serve Satchel's metrics at http://ADDR/metrics, in the Prometheus text format
    /// (off unless given).
    #[arg(long, value_name = "ADDR")]
    pub(crate) metrics_bind: Option<SocketAddr>,
    /// How log lines are written: `text` for people, `json` (one object a line) for log
    /// pipelines. One access line per request is logged at `info` (RUST_LOG=warn hides
    /// them).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub(crate) log_format: LogFormat,
}

/// How `satchel serve` writes its log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    /// Lines for people.
    Text,
    /// One JSON object a line.
    Json,
}

/// The web frameworks `satchel serve` runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Framework {
    /// axum, through `SessionLayer`.
    Axum,
    /// actix-web, through `SessionMiddleware`.
    Actix,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ConfigArgs {
    /// TOML file with SESSION_* settings (the environment overrides it).
    #[arg(long)]
    pub(crate) config: Option<PathBuf>,
}
