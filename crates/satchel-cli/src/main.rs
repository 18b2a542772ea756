//! `satchel`: the Satchel demo server and session tools.

mod cli;
mod commands;

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;

/// The binary's allocator. A request allocates a few dozen small blocks (a session's keys
/// and values, the futures of its store calls), and glibc's allocator spends about as many
/// instructions on them as a Redis read spends on everything else in Satchel; mimalloc's
/// thread-local free lists take a fraction of that (docs/benchmarks.md has the counts with
/// each). The library leaves the choice to the application, as libraries do.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Runs the command. A failure is printed as `error: …` with its causes, never as a Rust
/// backtrace (whatever RUST_BACKTRACE says: it is the user's mistake or the
/// environment's, not a bug), and ends with status 2 for bad settings, 1 for the rest.
fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let mut message = format!("error: {error}");
            for cause in error.chain().skip(1) {
                message.push_str(&format!("\n  caused by: {cause}"));
            }
            eprintln!("{message}");
            ExitCode::from(exit_status(&error))
        }
    }
}

/// Settings the user must change.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct BadSetting(pub(crate) String);

/// 2 when the settings are wrong (a bad value, an unknown key, a contradiction, a file
/// that cannot be read as settings), 1 for any other failure (a store that cannot be
/// reached, a directory that cannot be used, …).
fn exit_status(error: &anyhow::Error) -> u8 {
    let bad_settings = error.chain().any(|cause| {
        cause.is::<BadSetting>()
            || cause
                .downcast_ref::<satchel::ConfigError>()
                .is_some_and(|e| !matches!(e, satchel::ConfigError::Io { .. }))
    });
    if bad_settings { 2 } else { 1 }
}

fn run() -> anyhow::Result<()> {
    let cli = cli::Cli::parse();
    let format = match &cli.command {
        cli::Command::Serve(args) => args.log_format,
        _ => cli::LogFormat::Text,
    };
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr);
    match format {
        cli::LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
        cli::LogFormat::Json => logs.json().flatten_event(true).init(),
    }
    let workers = worker_threads(std::env::var_os("TOKIO_WORKER_THREADS"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        match cli.command {
            cli::Command::Serve(args) => commands::serve::run(args, workers).await,
            cli::Command::Config(args) => commands::config::run(&args),
            cli::Command::Check(args) => commands::check::run(&args).await,
            cli::Command::Migrate(args) => commands::migrate::run(args).await,
            cli::Command::Cleanup(args) => commands::cleanup::run(args).await,
            cli::Command::Sessions(args) => commands::sessions::run(args).await,
            cli::Command::Keygen => commands::keygen::run(),
        }
    })
}

/// The number of worker threads: TOKIO_WORKER_THREADS when set, else one per CPU core.
fn worker_threads(value: Option<std::ffi::OsString>) -> anyhow::Result<usize> {
    let Some(value) = value else {
        return Ok(std::thread::available_parallelism().map_or(1, usize::from));
    };
    let text = value.to_string_lossy();
    match text.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(BadSetting(format!(
            "TOKIO_WORKER_THREADS={text:?} is not valid: expected a whole number of threads, \
             1 or more (unset: one per CPU core)"
        ))
        .into()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::worker_threads;

    #[test]
    fn worker_threads_follow_the_variable_and_reject_nonsense() {
        assert_eq!(worker_threads(Some("3".into())).unwrap(), 3);
        assert_eq!(worker_threads(Some(" 1 ".into())).unwrap(), 1);
        assert!(worker_threads(None).unwrap() >= 1);
        for bad in ["0", "abc", "-2", "", "1.5"] {
            let error = worker_threads(Some(bad.into())).unwrap_err().to_string();
            assert!(error.contains("TOKIO_WORKER_THREADS"), "{error}");
            assert!(error.contains("1 or more"), "{error}");
        }
    }
}
