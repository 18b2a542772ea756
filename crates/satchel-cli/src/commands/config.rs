//! `satchel config`: the settings in force, as a TOML file that `--config` reads back.

use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;

use crate::cli::ConfigArgs;

/// Where a value in force came from.
fn source_of(key: &str, file_keys: &toml::Table) -> &'static str {
    let aliases = satchel::config::ALIASES
        .iter()
        .filter(|(_, target)| *target == key)
        .map(|(alias, _)| *alias);
    let names = || std::iter::once(key).chain(aliases.clone());
    if names().any(|name| std::env::var_os(name).is_some()) {
        "environment"
    } else if names().any(|name| file_keys.contains_key(name)) {
        "file"
    } else if key == "SESSION_TYPE" {
        "the demo's default (the library's is null)"
    } else {
        "default"
    }
}

/// The keys the settings file names, if one is given.
fn file_keys(file: Option<&Path>) -> anyhow::Result<toml::Table> {
    let Some(path) = file else {
        return Ok(toml::Table::new());
    };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text.parse::<toml::Table>().unwrap_or_default())
}

/// One line of the output: `KEY = "value"  # source`, or, for a value that is unset or
/// not shown (a secret, a URL's password), a comment that says so, so that the output
/// read back with `--config` sets exactly the values it shows.
fn line(key: &str, value: &str, source: &str) -> String {
    let hidden = value.starts_with('<') || value.contains("<redacted>");
    if hidden {
        format!("# {key} = {value}  # {source}; not written as a value")
    } else {
        let quoted = toml::Value::String(value.to_owned()).to_string();
        format!("{key} = {quoted}  # {source}")
    }
}

pub(crate) fn run(args: &ConfigArgs) -> anyhow::Result<()> {
    let file = args.config.as_deref();
    let config = super::demo_config(file)?;
    let from_file = file_keys(file)?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "# The settings in force (defaults < file < environment), as TOML that \
         `satchel serve --config` reads back.\n# Secrets and unset keys are comments."
    )?;
    for (key, value) in config.entries() {
        writeln!(out, "{}", line(key, &value, source_of(key, &from_file)))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::line;

    #[test]
    fn values_are_toml_strings_and_hidden_ones_comments() {
        let text = line("SESSION_KEY_PREFIX", "a\"b'c:", "file");
        let table: toml::Table = text.parse().expect("valid TOML");
        assert_eq!(
            table["SESSION_KEY_PREFIX"].as_str(),
            Some("a\"b'c:"),
            "{text}"
        );
        assert!(line("SECRET_KEY", "<set>", "environment").starts_with("# SECRET_KEY"));
        let url = line("SESSION_REDIS", "redis://u:<redacted>@h/0", "default");
        assert!(url.starts_with('#'), "{url}");
    }
}
