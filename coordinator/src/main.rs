//! `headroom-coordinator`: the group coordinator and its actuators, and the `groups` client.
//!
//! `headroom coordinator …` and `headroom groups …` run this binary with the same arguments,
//! so its command line is those two commands of `headroom`, named as `headroom` names them.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use headroom_common::cli::{CoordinatorArgs, GroupsArgs};
use headroom_common::exit;

/// headroom's group coordinator: receives the agents' signals, decides each group's capacity
/// and drives its auto-scaling engine.
#[derive(Debug, Parser)]
#[command(name = "headroom", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The commands this binary serves.
#[derive(Debug, Subcommand)]
enum Command {
    /// Run the group coordinator: receive signals, decide group capacity, drive actuators.
    Coordinator(CoordinatorArgs),
    /// Show a coordinator's groups: desired vs actual capacity, hosts, last actions.
    Groups(GroupsArgs),
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Coordinator(args) => headroom_coordinator::daemon::run(&args),
        Command::Groups(args) => headroom_coordinator::client::groups(&args),
    };
    exit::report(result)
}
