//! `headroom-coordinator`: the group coordinator and its actuators, the `groups` client and
//! the `schedule` listing.
//!
//! `headroom coordinator …`, `headroom groups …` and `headroom schedule …` run this binary with the same arguments,
//! so its command line is those commands of `headroom`, named as `headroom` names them.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use headroom_common::cli::{CoordinatorArgs, GroupsArgs, ScheduleArgs};
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
    /// List the next firings of each group's scheduled entries, from the configuration file.
    Schedule(ScheduleArgs),
}

fn main() -> ExitCode {
    let cli = match exit::parse_args::<Cli>() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let result = match cli.command {
        Command::Coordinator(args) => headroom_coordinator::daemon::run(&args),
        Command::Groups(args) => headroom_coordinator::client::groups(&args),
        Command::Schedule(args) => headroom_coordinator::upcoming::schedule(&args),
    };
    exit::report(result)
}
