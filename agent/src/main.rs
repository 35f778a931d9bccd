//! `headroom`: the agent daemon, its local CLI, the replay tools and the group coordinator.

mod actuator;
mod cli;
mod coordinator;
mod exit;
mod replay;
mod signal;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use crate::cli::{Cli, Command, GenerateKind};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Backtest(args) => replay::backtest(&args),
        Command::Simulate(args) => replay::simulate(&args),
        Command::Coordinator(args) => coordinator::run(args),
        Command::Groups(args) => coordinator::client::groups(&args),
        Command::Generate(args) => generate(&args),
        _ => Err(anyhow::anyhow!("not built yet")),
    };
    exit::report(result)
}

/// Writes the man page or shell completions generated from the clap definitions.
fn generate(args: &cli::GenerateArgs) -> anyhow::Result<()> {
    use anyhow::Context;
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;
    let mut cmd = Cli::command();
    match args.kind {
        GenerateKind::Man => {
            clap_mangen::generate_to(cmd, &args.dir).context("writing man pages")?;
        }
        GenerateKind::Completions => {
            for shell in [
                clap_complete::Shell::Bash,
                clap_complete::Shell::Zsh,
                clap_complete::Shell::Fish,
            ] {
                clap_complete::generate_to(shell, &mut cmd, "headroom", &args.dir)
                    .context("writing completions")?;
            }
        }
    }
    Ok(())
}
