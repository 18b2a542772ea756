//! `satchel sessions`: a user's sessions on the store the settings select: list, count,
//! show, revoke one, revoke them all.

use std::collections::HashSet;
use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::PathBuf;

use anyhow::Context as _;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use indicatif::ProgressBar;
use satchel::store::BoxedStore;
use satchel::store::index::{self, USER_KEY, is_index};
use satchel::{
    FilesystemStore, Record, SessionConfig, SessionId, SessionInfo, SessionManager,
    SessionStore as _, SessionType,
};
use serde_json::Value;

use super::handlers::session_json;

#[derive(Debug, clap::Args)]
pub(crate) struct SessionsArgs {
    /// TOML file with SESSION_* settings (the environment overrides it).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Print JSON for scripts instead of a table for people.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: SessionsCommand,
}

#[derive(Debug, clap::Subcommand)]
enum SessionsCommand {
    /// List live sessions: a user's, most recently seen first, or (without --user) every
    /// session of the store, in the store's order.
    List {
        /// The user (as bound by `Session::set_user`).
        #[arg(long)]
        user: Option<String>,
        /// Show at most this many.
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Count live sessions: a user's, or (without --user) every session of the store.
    Count {
        /// The user.
        #[arg(long)]
        user: Option<String>,
    },
    /// Show one session of a user, by fingerprint (or a prefix of it).
    Show {
        /// The session's fingerprint, as `list` shows it (it may begin with `-`).
        #[arg(allow_hyphen_values = true)]
        fingerprint: String,
        /// The user.
        #[arg(long)]
        user: String,
    },
    /// Revoke one session of a user, by fingerprint (or a prefix of it).
    Revoke {
        /// The session's fingerprint, as `list` shows it (it may begin with `-`).
        #[arg(allow_hyphen_values = true)]
        fingerprint: String,
        /// The user.
        #[arg(long)]
        user: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Delete expired sessions (filesystem and SQL stores, in batches; the others expire
    /// their sessions themselves), then drop dead sessions from every user's index
    /// (stores that list).
    Cleanup,
    /// Revoke every session of a user ("log out everywhere").
    RevokeUser {
        /// The user.
        user: String,
        /// Keep the session with this fingerprint (the one in use; it may begin with `-`).
        #[arg(long, value_name = "FINGERPRINT", allow_hyphen_values = true)]
        keep_current: Option<String>,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
}

pub(crate) async fn run(args: SessionsArgs) -> anyhow::Result<()> {
    let config = super::demo_config(args.config.as_deref())?;
    let json = args.json;
    let command = match args.command {
        SessionsCommand::Cleanup => return cleanup(config, args.config, json).await,
        other => other,
    };
    let manager = open(config).await?;
    match command {
        SessionsCommand::List {
            user: Some(user),
            limit,
        } => {
            let mut sessions = listed(&manager, &user).await?;
            sessions.truncate(limit.unwrap_or(usize::MAX));
            print_sessions(&sessions, json)
        }
        SessionsCommand::List { user: None, limit } => {
            let sessions = every_session(&manager, limit).await?;
            print_all(&sessions, json)
        }
        SessionsCommand::Count { user } => {
            let count = match &user {
                Some(user) => listed(&manager, user).await?.len(),
                None => every_session(&manager, None).await?.len(),
            };
            let value = match &user {
                Some(user) => serde_json::json!({ "user": user, "count": count }),
                None => serde_json::json!({ "count": count }),
            };
            answer(json, &value, count)
        }
        SessionsCommand::Show { fingerprint, user } => {
            let sessions = listed(&manager, &user).await?;
            let info = matching(&sessions, &fingerprint, &user)?;
            print_sessions(std::slice::from_ref(info), json)
        }
        SessionsCommand::Revoke {
            fingerprint,
            user,
            yes,
        } => {
            let sessions = listed(&manager, &user).await?;
            let info = matching(&sessions, &fingerprint, &user)?;
            confirm(
                &format!("Revoke session {} of user {user}?", info.fingerprint),
                yes,
            )?;
            let revoked = manager
                .revoke(info.id())
                .await
                .context("revoking the session")?;
            report(json, &user, usize::from(revoked))
        }
        SessionsCommand::RevokeUser {
            user,
            keep_current,
            yes,
        } => {
            let sessions = listed(&manager, &user).await?;
            let keep = match &keep_current {
                Some(fingerprint) => Some(*matching(&sessions, fingerprint, &user)?.id()),
                None => None,
            };
            let doomed = sessions.len() - usize::from(keep.is_some());
            if doomed == 0 {
                return report(json, &user, 0);
            }
            confirm(&format!("Revoke {doomed} session(s) of user {user}?"), yes)?;
            let revoked = manager
                .revoke_user(&user, keep.as_ref())
                .await
                .context("revoking the user's sessions")?;
            report(json, &user, revoked)
        }
        // Run above, before the store is opened: it opens stores of its own.
        SessionsCommand::Cleanup => Ok(()),
    }
}

/// The manager of the store the settings select.
async fn open(config: SessionConfig) -> anyhow::Result<SessionManager> {
    let store = super::describe_store(&config);
    SessionManager::from_config(config)
        .await
        .with_context(|| format!("opening the store ({store})"))
}

/// `satchel sessions cleanup`: expired sessions first, then the indexes' dead members.
async fn cleanup(config: SessionConfig, file: Option<PathBuf>, json: bool) -> anyhow::Result<()> {
    let expired = match config.session_type() {
        SessionType::Sql => {
            let args = super::cleanup::CleanupArgs {
                config: file,
                batch_size: satchel::store::sql::DEFAULT_BATCH_SIZE,
            };
            Some(super::cleanup::sweep(args).await?.0)
        }
        SessionType::Filesystem => {
            let store = FilesystemStore::from_config(&config)?;
            // A spinner on a terminal, moved on every 1,000 files the sweep deletes.
            let bar = if std::io::stderr().is_terminal() {
                ProgressBar::new_spinner()
            } else {
                ProgressBar::hidden()
            };
            let shown = bar.clone();
            let deleted = store
                .delete_expired_with_progress(move |so_far| {
                    shown.set_message(format!("{so_far} expired session files deleted"));
                    shown.tick();
                })
                .await
                .context("deleting expired session files")?;
            bar.finish_and_clear();
            Some(deleted)
        }
        _ => None,
    };
    let store = super::describe_store(&config);
    let manager = open(config).await?;
    let pruned = prune_indexes(&manager).await?;
    let mut out = std::io::stdout().lock();
    if json {
        let reply =
            serde_json::json!({ "expired_deleted": expired, "index_members_dropped": pruned });
        writeln!(out, "{reply}")?;
        return Ok(());
    }
    match expired {
        Some(deleted) => writeln!(out, "deleted {deleted} expired session(s)")?,
        None => writeln!(
            out,
            "{store}: sessions expire by themselves (or live in one process): nothing to delete"
        )?,
    }
    match pruned {
        Some(dropped) => writeln!(out, "dropped {dropped} dead session(s) from user indexes")?,
        None => writeln!(
            out,
            "user indexes: this store cannot list them; dead sessions leave a user's index \
             when the user's sessions are listed"
        )?,
    }
    Ok(())
}

/// Drops dead members from every user index the store holds, paging through the store
/// with a spinner on a terminal; `None` for a store that cannot list.
async fn prune_indexes(manager: &SessionManager) -> anyhow::Result<Option<usize>> {
    let store = manager.store();
    if !store.capabilities().listable {
        return Ok(None);
    }
    let mut walk = Walk::new(store);
    let (mut seen, mut dropped) = (0_usize, 0);
    while let Some(entries) = walk.next().await? {
        for (id, record) in entries.iter().filter(|(_, r)| is_index(&r.data)) {
            dropped += index::prune(store, id, &record.data)
                .await
                .context("pruning a user index")?;
        }
        seen += entries.len();
        walk.show(format!(
            "{seen} entries checked, {dropped} dead members dropped"
        ));
    }
    Ok(Some(dropped))
}

/// Pages of this many entries when listing a whole store.
const PAGE: usize = 1000;

/// Every live session of the store (not the user indexes kept beside them), at most
/// `limit`, paging through the store with a spinner on a terminal.
async fn every_session(
    manager: &SessionManager,
    limit: Option<usize>,
) -> anyhow::Result<Vec<(SessionId, Record)>> {
    let store = manager.store();
    if !store.capabilities().listable {
        return Err(anyhow::anyhow!(
            "this store cannot list its sessions (memcached has no way to enumerate its \
             keys): give --user, whose sessions its index finds"
        ));
    }
    let limit = limit.unwrap_or(usize::MAX);
    let mut walk = Walk::new(store);
    let mut sessions = Vec::new();
    while sessions.len() < limit
        && let Some(entries) = walk.next().await?
    {
        sessions.extend(entries.into_iter().filter(|(_, r)| !is_index(&r.data)));
        walk.show(format!("{} sessions", sessions.len()));
    }
    sessions.truncate(limit);
    Ok(sessions)
}

/// A walk through every entry of a store, [`PAGE`] at a time, with a spinner on stderr
/// when it is a terminal (cleared when the walk ends). Each entry comes once: on a store
/// whose pages may repeat one (Redis), the ids seen so far are kept to drop repeats.
struct Walk<'a> {
    store: &'a BoxedStore,
    cursor: Option<String>,
    done: bool,
    seen: Option<HashSet<SessionId>>,
    progress: ProgressBar,
}

impl<'a> Walk<'a> {
    fn new(store: &'a BoxedStore) -> Self {
        let progress = if std::io::stderr().is_terminal() {
            ProgressBar::new_spinner()
        } else {
            ProgressBar::hidden()
        };
        Self {
            store,
            cursor: None,
            done: false,
            seen: store.capabilities().list_may_repeat.then(HashSet::new),
            progress,
        }
    }

    /// The next page's entries; `None` after the last page.
    async fn next(&mut self) -> anyhow::Result<Option<Vec<(SessionId, Record)>>> {
        if self.done {
            return Ok(None);
        }
        let page = self
            .store
            .list(self.cursor.as_deref(), PAGE)
            .await
            .context("listing the store's entries")?;
        self.done = page.next.is_none();
        self.cursor = page.next;
        let mut entries = page.entries;
        if let Some(seen) = &mut self.seen {
            entries.retain(|(id, _)| seen.insert(*id));
        }
        Ok(Some(entries))
    }

    fn show(&self, message: String) {
        self.progress.set_message(message);
        self.progress.tick();
    }
}

impl Drop for Walk<'_> {
    fn drop(&mut self) {
        self.progress.finish_and_clear();
    }
}

/// A whole store's sessions, as a table or JSON: fingerprint, user, expiry, size.
fn print_all(sessions: &[(SessionId, Record)], json: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let user = |record: &Record| {
        record
            .data
            .get(USER_KEY)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let size = |record: &Record| serde_json::to_vec(&record.data).map_or(0, |json| json.len());
    if json {
        let list: Vec<Value> = sessions
            .iter()
            .map(|(id, record)| {
                serde_json::json!({
                    "fingerprint": id.fingerprint(),
                    "user": user(record),
                    "expires": humantime::format_rfc3339_seconds(record.expires_at).to_string(),
                    "size": size(record),
                })
            })
            .collect();
        writeln!(out, "{}", Value::Array(list))?;
        return Ok(());
    }
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_header(["fingerprint", "user", "expires", "bytes"]);
    for (id, record) in sessions {
        table.add_row([
            id.fingerprint(),
            user(record).unwrap_or_default(),
            humantime::format_rfc3339_seconds(record.expires_at).to_string(),
            size(record).to_string(),
        ]);
    }
    writeln!(out, "{table}")?;
    writeln!(out, "{} session(s)", sessions.len())?;
    Ok(())
}

async fn listed(manager: &SessionManager, user: &str) -> anyhow::Result<Vec<SessionInfo>> {
    manager
        .user_sessions(user)
        .await
        .with_context(|| format!("listing the sessions of user {user}"))
}

/// The one session whose fingerprint starts with `prefix`.
fn matching<'a>(
    sessions: &'a [SessionInfo],
    prefix: &str,
    user: &str,
) -> anyhow::Result<&'a SessionInfo> {
    let found: Vec<&SessionInfo> = sessions
        .iter()
        .filter(|info| !prefix.is_empty() && info.fingerprint.starts_with(prefix))
        .collect();
    match found.as_slice() {
        [one] => Ok(one),
        [] => Err(crate::BadSetting(format!(
            "no live session of user {user} has the fingerprint {prefix:?} \
             (`satchel sessions list --user {user}` lists them)"
        ))
        .into()),
        many => Err(crate::BadSetting(format!(
            "{} sessions of user {user} have fingerprints starting with {prefix:?}: \
             give more of it",
            many.len()
        ))
        .into()),
    }
}

fn print_sessions(sessions: &[SessionInfo], json: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        let list: Vec<Value> = sessions.iter().map(session_json).collect();
        writeln!(out, "{}", Value::Array(list))?;
        return Ok(());
    }
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header([
        "fingerprint",
        "logged in",
        "last seen",
        "expires",
        "permanent",
        "bytes",
    ]);
    for info in sessions {
        let json = session_json(info);
        let text = |key: &str| json[key].as_str().unwrap_or_default().to_owned();
        table.add_row([
            info.fingerprint.clone(),
            text("created"),
            text("last_seen"),
            text("expires"),
            info.permanent.to_string(),
            info.size.to_string(),
        ]);
    }
    writeln!(out, "{table}")?;
    writeln!(out, "{} session(s)", sessions.len())?;
    Ok(())
}

fn report(json: bool, user: &str, revoked: usize) -> anyhow::Result<()> {
    let value = serde_json::json!({ "user": user, "revoked": revoked });
    answer(
        json,
        &value,
        format_args!("revoked {revoked} session(s) of user {user}"),
    )
}

/// Prints `value` for scripts (`--json`), or `text` for people.
fn answer(json: bool, value: &Value, text: impl std::fmt::Display) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{value}")?;
    } else {
        writeln!(out, "{text}")?;
    }
    Ok(())
}

/// Asks on the terminal before a destructive command, unless `--yes`; without a terminal
/// to ask on, refuses.
fn confirm(question: &str, yes: bool) -> anyhow::Result<()> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(crate::BadSetting(format!(
            "{question} Not without confirmation: add --yes (no terminal to ask on)"
        ))
        .into());
    }
    eprint!("{question} [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if matches!(answer.trim(), "y" | "Y" | "yes" | "Yes") {
        Ok(())
    } else {
        anyhow::bail!("cancelled: nothing was revoked")
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use crate::cli::{Cli, Command};

    /// A fingerprint is base64url: one in 64 begins with `-`, and must still be taken as
    /// the fingerprint, not as an option.
    #[test]
    fn fingerprints_may_begin_with_a_hyphen() {
        for args in [
            &[
                "satchel", "sessions", "revoke", "-nAbC", "--user", "7", "--yes",
            ][..],
            &["satchel", "sessions", "show", "-nAbC", "--user", "7"],
            &[
                "satchel",
                "sessions",
                "revoke-user",
                "7",
                "--keep-current",
                "-nAbC",
            ],
        ] {
            let cli = Cli::try_parse_from(args).unwrap_or_else(|error| panic!("{args:?}: {error}"));
            let Command::Sessions(sessions) = cli.command else {
                panic!("{args:?}: not the sessions command");
            };
            assert!(
                format!("{sessions:?}").contains("\"-nAbC\""),
                "{sessions:?}"
            );
        }
    }
}
