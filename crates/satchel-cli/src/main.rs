//! `satchel`: the Satchel demo server and session tools.

mod cli;
mod commands;

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli::Cli::parse().command {
        cli::Command::Serve(args) => commands::serve::run(args).await,
        cli::Command::Config(args) => commands::config::run(&args),
        cli::Command::Migrate(args) => commands::migrate::run(args).await,
        cli::Command::Cleanup(args) => commands::cleanup::run(args).await,
    }
}
