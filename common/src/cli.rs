//! The arguments of the commands `headroom-coordinator` serves, `coordinator`, `groups` and
//! `schedule`. `headroom` parses them too: its help and man page describe every command, and it
//! runs the sibling binary for these two with the same arguments.

use std::path::PathBuf;

use clap::Args;

/// `headroom coordinator`.
#[derive(Debug, Clone, Args)]
pub struct CoordinatorArgs {
    /// Coordinator configuration file.
    #[arg(long, env = "HEADROOM_COORDINATOR_CONFIG")]
    pub config: Option<PathBuf>,
    /// Listen address (overrides the file), e.g. 127.0.0.1:7070.
    #[arg(long)]
    pub listen: Option<String>,
    /// File holding the bearer token for every group (overrides the file).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// SQLite state file (overrides the file).
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Check the configuration and its token files, report every problem (exit 64) or say it
    /// is valid, and exit without serving.
    #[arg(long)]
    pub check: bool,
}

/// `headroom groups`.
#[derive(Debug, Clone, Args)]
pub struct GroupsArgs {
    /// Coordinator base URL.
    #[arg(
        long,
        env = "HEADROOM_COORDINATOR_URL",
        default_value = "http://127.0.0.1:7070"
    )]
    pub url: String,
    /// File holding the bearer token.
    #[arg(long, env = "HEADROOM_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// PEM file of the CA (or self-signed certificate) to trust for an https URL, instead of
    /// the built-in web roots.
    #[arg(long)]
    pub ca_cert: Option<PathBuf>,
    /// One group only.
    pub group: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `headroom schedule`.
#[derive(Debug, Clone, Args)]
pub struct ScheduleArgs {
    /// Coordinator configuration file whose groups' `[[schedule]]` entries to list.
    #[arg(
        long,
        env = "HEADROOM_COORDINATOR_CONFIG",
        default_value = "/etc/headroom/coordinator.toml"
    )]
    pub config: PathBuf,
    /// One group only.
    pub group: Option<String>,
    /// Firings to list per entry (at least 1).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub count: u64,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}
