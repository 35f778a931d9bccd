//! Logging for both binaries: a filter of per-target levels (no regex engine) and a format
//! for a terminal, a pipe, or the journal.

use tracing_subscriber::filter::Targets;

/// Environment variables that override the configured filter, first set and valid wins.
pub const FILTER_ENV: [&str; 2] = ["HEADROOM_LOG", "RUST_LOG"];

/// The levels a bare directive may name (0 to 5 are off to trace, as the filter reads them).
const LEVELS: [&str; 12] = [
    "trace", "debug", "info", "warn", "error", "off", "0", "1", "2", "3", "4", "5",
];

/// Parses a filter such as `info` or `warn,headroom::pipeline=debug`; the error says what
/// a filter looks like. A bare word must be a level: the filter syntax reads any other as a
/// target enabled at every level, with every other target off, so a misspelt level
/// (`warning`) would silence the log, warnings included.
pub fn parse_filter(filter: &str) -> Result<Targets, String> {
    let like = "a filter like \"info\" or \"warn,headroom=debug\"";
    if let Some(word) = filter.split(',').map(str::trim).find(|d| {
        !d.is_empty() && !d.contains('=') && !LEVELS.contains(&d.to_ascii_lowercase().as_str())
    }) {
        return Err(format!(
            "{filter:?} is not {like}: {word:?} is no level ({})",
            LEVELS.join(", ")
        ));
    }
    filter
        .parse::<Targets>()
        .map_err(|e| format!("{filter:?} is not {like}: {e}"))
}

/// Installs the process's subscriber, filtered by `$HEADROOM_LOG`, else `$RUST_LOG`, else
/// `configured`, else INFO. A filter in the environment that does not parse is ignored and
/// reported once logging is up. Under systemd (`$JOURNAL_STREAM`) lines carry no timestamp
/// (the journal adds its own) and no colour.
pub fn init(configured: Option<&str>) {
    use tracing_subscriber::prelude::*;
    let mut ignored = None;
    let from_env = FILTER_ENV.iter().find_map(|var| {
        let value = std::env::var(var).ok().filter(|v| !v.trim().is_empty())?;
        parse_filter(&value)
            .inspect_err(|e| {
                ignored.get_or_insert((*var, e.clone()));
            })
            .ok()
    });
    let filter = from_env
        .or_else(|| configured.and_then(|c| parse_filter(c).ok()))
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO));
    let journal = std::env::var_os("JOURNAL_STREAM").is_some();
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let layer = tracing_subscriber::fmt::layer()
        .with_ansi(ansi && !journal)
        .with_writer(std::io::stderr);
    let registry = tracing_subscriber::registry().with(filter);
    // Only fails when a subscriber is already installed, which then keeps logging.
    let _ = if journal {
        registry.with(layer.without_time()).try_init()
    } else {
        registry.with(layer).try_init()
    };
    if let Some((var, reason)) = ignored {
        tracing::warn!(var, "ignoring the log filter in the environment: {reason}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_and_bad_ones_say_what_a_filter_is() {
        assert!(parse_filter("info").is_ok());
        assert!(parse_filter("warn,headroom::pipeline=debug").is_ok());
        let e = parse_filter("warn,headroom=loud").unwrap_err();
        assert!(
            e.contains("\"warn,headroom=loud\" is not a filter like"),
            "{e}"
        );
        // A misspelt level is not a target that silences everything else.
        for bad in ["warning", "verbose", "info,debgu"] {
            let e = parse_filter(bad).unwrap_err();
            assert!(e.contains("is no level"), "{bad}: {e}");
        }
        assert!(parse_filter("WARN").is_ok());
        assert!(parse_filter("3").is_ok());
    }
}
