//! `satchel cleanup`: delete expired sessions from the SQL table, in batches (Flask-Session's
//! table, in one statement, under SESSION_FLASK_COMPAT).

use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use indicatif::ProgressBar;
use satchel::store::sql::DEFAULT_BATCH_SIZE;

#[derive(Debug, clap::Args)]
pub(crate) struct CleanupArgs {
    /// TOML file with SESSION_* settings (the environment overrides it).
    #[arg(long)]
    pub(crate) config: Option<PathBuf>,
    /// Rows deleted per statement: each statement holds its locks only that long.
    #[arg(long, default_value_t = DEFAULT_BATCH_SIZE, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) batch_size: u64,
}

pub(crate) async fn run(args: CleanupArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let (deleted, table) = sweep(args).await?;
    writeln!(
        std::io::stdout().lock(),
        "deleted {deleted} expired sessions from {table} in {:.1?}",
        started.elapsed()
    )?;
    Ok(())
}

/// Deletes the expired rows in batches, showing progress on stderr (a bar on a
/// terminal, a line per batch otherwise); how many went, and from which table.
pub(crate) async fn sweep(args: CleanupArgs) -> anyhow::Result<(u64, String)> {
    let store = super::migrate::open(args.config.as_deref()).await?;
    let table = store.mapping().table().to_owned();
    if satchel::SessionConfig::load(args.config.as_deref())?
        .flask_compat()
        .is_on()
    {
        let deleted = store
            .delete_expired_flask()
            .await
            .context("deleting expired sessions from Flask-Session's table")?;
        return Ok((deleted, table));
    }
    let expired = store
        .count_expired()
        .await
        .context("counting expired sessions")?;
    let bar = std::io::stderr()
        .is_terminal()
        .then(|| ProgressBar::new(expired));
    if bar.is_none() {
        eprintln!("{expired} expired sessions in {table}");
    }
    let deleted = store
        .delete_expired_in_batches(args.batch_size, |progress| match &bar {
            Some(bar) => bar.set_position(progress.deleted),
            None => eprintln!(
                "batch {}: deleted {} rows, {} of {expired} so far",
                progress.batches, progress.deleted_in_batch, progress.deleted
            ),
        })
        .await
        .context("deleting expired sessions")?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok((deleted, table))
}
