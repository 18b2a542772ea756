//! `satchel config`: the settings in force.

use std::io::Write as _;

use crate::cli::ConfigArgs;

pub(crate) fn run(args: &ConfigArgs) -> anyhow::Result<()> {
    let config = super::demo_config(args.config.as_deref())?;
    let mut out = std::io::stdout().lock();
    for (key, value) in config.entries() {
        writeln!(out, "{key} = {value}")?;
    }
    Ok(())
}
