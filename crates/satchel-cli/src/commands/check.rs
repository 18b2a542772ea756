//! `satchel check`: are these settings usable? Validates them, opens the store for real
//! and asks it for a session, printing one line per check.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use satchel::store::SessionStore as _;
use satchel::{SessionConfig, SessionId, SessionType};

use super::describe_store;

/// Arguments of `satchel check`.
#[derive(Debug, clap::Args)]
pub(crate) struct CheckArgs {
    /// TOML file with SESSION_* settings (the environment overrides it).
    #[arg(long)]
    pub(crate) config: Option<PathBuf>,
}

/// One line of the report on stdout: `ok`/`FAIL`, what was checked, and what was seen.
fn report(passed: bool, what: &str, seen: &str) {
    let mark = if passed { "ok  " } else { "FAIL" };
    // A closed stdout loses the report, not the exit status that carries the verdict.
    let _ = writeln!(std::io::stdout().lock(), "{mark}  {what:<9} {seen}");
}

/// Runs the checks in order and stops at the first that fails; the error it returns
/// makes the exit status (2 for settings, 1 for a store that does not work).
pub(crate) async fn run(args: &CheckArgs) -> anyhow::Result<()> {
    let config = match super::demo_config(args.config.as_deref()) {
        Ok(config) => config,
        Err(error) => {
            report(false, "settings", &format!("{error:#}"));
            return Err(error.context("the settings are not usable"));
        }
    };
    report(
        true,
        "settings",
        &format!(
            "valid (cookie {}, signed ids: {})",
            config.cookie_name(),
            config.use_signer()
        ),
    );
    let store = describe_store(&config);
    if config.session_type() == SessionType::Null {
        report(
            true,
            "store",
            "null: sessions are disabled (set SESSION_TYPE to keep them)",
        );
        return Ok(());
    }
    // A check does not change the database: the table must already be there.
    let probe = config.clone().with_sql_auto_migrate(false);
    let started = Instant::now();
    let opened = satchel::store::from_config(&probe).await;
    let opened = match opened {
        Ok(opened) => opened,
        Err(error) => {
            let error = anyhow::Error::new(error);
            report(false, "store", &format!("{error:#}"));
            return Err(error.context(format!("the store ({store}) is not usable")));
        }
    };
    report(
        true,
        "store",
        &format!("{store}: opened in {} ms", started.elapsed().as_millis()),
    );
    let started = Instant::now();
    match opened.load(&SessionId::generate(), None).await {
        Ok(None) => {
            report(
                true,
                "read",
                &format!(
                    "a session lookup answered in {} ms",
                    started.elapsed().as_millis()
                ),
            );
            Ok(())
        }
        Ok(Some(_)) => {
            report(false, "read", "a random id loaded a session");
            anyhow::bail!("the store ({store}) returned a session for an id never issued")
        }
        Err(error) => {
            let error = anyhow::Error::new(error);
            let hint = sql_hint(&config);
            report(false, "read", &format!("{error:#}{hint}"));
            Err(error.context(format!("the store ({store}) cannot read sessions{hint}")))
        }
    }
}

/// For SQL, what to do when the table is missing.
fn sql_hint(config: &SessionConfig) -> &'static str {
    if config.session_type() == SessionType::Sql {
        " (if the table is missing: `satchel migrate`, or SESSION_SQL_AUTO_MIGRATE=true)"
    } else {
        ""
    }
}
