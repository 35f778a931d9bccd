//! `headroom-coordinator`: the group coordinator and its actuators, and the `groups` client.
//!
//! It takes the same command line as `headroom` (which runs it for `headroom coordinator` and
//! `headroom groups`), so help, errors and the man page stay those of one tool.

use std::process::ExitCode;

use clap::Parser;
use headroom::cli::{Cli, Command};
use headroom::{coordinator, exit};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Coordinator(args) => coordinator::run(args),
        Command::Groups(args) => coordinator::client::groups(&args),
        _ => Err(exit::Exit::new(
            2,
            "headroom-coordinator runs only `coordinator` and `groups`; use `headroom` for the rest",
        )),
    };
    exit::report(result)
}
