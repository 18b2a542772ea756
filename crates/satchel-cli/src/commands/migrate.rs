//! `satchel migrate`: create the SQL session table and its expiry index (Flask-Session's
//! table under SESSION_FLASK_COMPAT).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use satchel::SessionConfig;
use satchel::store::sql::SqlStore;

#[derive(Debug, clap::Args)]
pub(crate) struct MigrateArgs {
    /// TOML file with SESSION_* settings (the environment overrides it).
    #[arg(long)]
    pub(crate) config: Option<PathBuf>,
}

pub(crate) async fn run(args: MigrateArgs) -> anyhow::Result<()> {
    let store = open(args.config.as_deref()).await?;
    if SessionConfig::load(args.config.as_deref())?
        .flask_compat()
        .is_on()
    {
        store
            .create_flask_table()
            .await
            .context("creating Flask-Session's session table")?;
        writeln!(
            std::io::stdout().lock(),
            "table {} (Flask-Session's layout, SESSION_FLASK_COMPAT): ready",
            store.mapping().table()
        )?;
        return Ok(());
    }
    let migration = store
        .migrate()
        .await
        .context("creating the session table")?;
    let mapping = store.mapping();
    let said = |created| {
        if created {
            "created"
        } else {
            "already present"
        }
    };
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "table {}: {}",
        mapping.table(),
        said(migration.table_created)
    )?;
    writeln!(
        out,
        "index {} on {}: {}",
        mapping.index(),
        mapping.expiry_column(),
        said(migration.index_created)
    )?;
    Ok(())
}

/// The SQL store the settings name (SESSION_SQL_URL, SESSION_SQLALCHEMY_TABLE,
/// SESSION_SQLALCHEMY_MODEL, …), opened without migrating or starting a cleanup task:
/// the commands do that work themselves.
pub(crate) async fn open(file: Option<&Path>) -> anyhow::Result<SqlStore> {
    let config = SessionConfig::load(file)?
        .with_sql_auto_migrate(false)
        .with_sql_cleanup_interval(None);
    if config.sql_url().is_none() {
        return Err(crate::BadSetting(
            "SESSION_SQL_URL is not set: give the database URL, e.g. \
             sqlite://sessions.db, postgres://user@host/db or mysql://user@host/db"
                .into(),
        )
        .into());
    }
    Ok(SqlStore::from_config(&config).await?)
}
