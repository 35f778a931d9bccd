//! `headroom`: the agent daemon, its local CLI and the replay tools.
//!
//! `headroom coordinator`, `headroom groups` and `headroom schedule` run the sibling binary `headroom-coordinator`
//! (same arguments, same process), which holds the coordinator and its actuators.

use std::process::ExitCode;

use clap::CommandFactory;

use headroom::cli::{self, Cli, Command, ConfigCommand, GenerateKind};
use headroom::{config, daemon, query, replay};
use headroom_common::exit;
use headroom_common::stdout;

/// The binary that serves `headroom coordinator`, `headroom groups` and `headroom schedule`.
const COORDINATOR_BIN: &str = "headroom-coordinator";

fn main() -> ExitCode {
    let cli = match exit::parse_args::<Cli>() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let result = match cli.command {
        Command::Agent(args) => daemon::run(&args),
        Command::Status(q) => query::status(&q),
        Command::Forecast(a) => query::forecast(&a),
        Command::History(a) => query::history(&a),
        Command::Health(q) => query::health(&q),
        Command::Decisions(a) => query::decisions(&a),
        Command::Report(a) => query::report(&a),
        Command::Config(ConfigCommand::Check { path }) => config_check(&path),
        Command::Config(ConfigCommand::Default) => stdout::print(config::DEFAULT_FILE),
        Command::Backtest(args) => replay::backtest(&args),
        Command::Simulate(args) => replay::simulate(&args),
        Command::Coordinator(_) | Command::Groups(_) | Command::Schedule(_) => {
            run_sibling(COORDINATOR_BIN)
        }
        Command::Generate(args) => generate(&args),
    };
    exit::report(result)
}

/// `headroom config check PATH`: every problem, or a one-line OK.
fn config_check(path: &std::path::Path) -> anyhow::Result<()> {
    config::Config::load(path, false).map_err(exit::Exit::config)?;
    stdout::print(&format!("{}: OK\n", path.display()))
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

/// Replaces this process with the binary `name` installed next to this one, passing the same
/// arguments. Returns only on failure, with an error that says where the binary was expected.
fn run_sibling(name: &str) -> anyhow::Result<()> {
    use std::os::unix::process::CommandExt;

    let exe = std::env::current_exe()
        .map_err(|e| exit::Exit::new(exit::UNAVAILABLE, format!("finding this executable: {e}")))?;
    let sibling = exe.with_file_name(name);
    let err = std::process::Command::new(&sibling)
        .args(std::env::args_os().skip(1))
        .exec();
    Err(exit::Exit::new(
        exit::UNAVAILABLE,
        format!(
            "cannot run {}: {err} (it ships next to headroom; from source: cargo build --release -p {name})",
            sibling.display()
        ),
    ))
}
