//! Exit codes and the one-line error report at each binary's edge.
//!
//! Codes follow sysexits.h where one fits, as operators script on them: 64 for bad input
//! (configuration, flags), 69 for a service that is not there (no agent on the socket, no
//! coordinator binary or URL), 77 for one this user may not use (the control socket's mode and
//! group).

use std::process::ExitCode;

/// An error that maps to a specific exit code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Exit {
    /// The process's exit code.
    pub code: u8,
    /// The one line printed.
    pub message: String,
}

/// Invalid configuration or flags (EX_CONFIG is 78, but operators script on 64 = EX_USAGE for
/// bad input).
pub const CONFIG_INVALID: u8 = 64;
/// The agent, the coordinator or a sibling binary is not there (EX_UNAVAILABLE).
pub const UNAVAILABLE: u8 = 69;
/// There, but not for this user (EX_NOPERM).
pub const NO_PERMISSION: u8 = 77;

impl Exit {
    /// An error with an exit code, ready for `?` (hence not `Self`).
    #[allow(clippy::new_ret_no_self)]
    pub fn new(code: u8, message: impl Into<String>) -> anyhow::Error {
        anyhow::Error::new(Exit {
            code,
            message: message.into(),
        })
    }

    /// An invalid configuration or flag: exit 64 with `error` as the message.
    pub fn config(error: impl std::fmt::Display) -> anyhow::Error {
        Exit::new(CONFIG_INVALID, error.to_string())
    }
}

/// The command line parsed as `T`, or the exit code to stop with: help and version print and
/// exit 0, a flag clap refuses prints its usage error and exits [`CONFIG_INVALID`] like every
/// other bad input (clap's own is 2).
pub fn parse_args<T: clap::Parser>() -> Result<T, ExitCode> {
    T::try_parse().map_err(|e| {
        // A closed stdout or stderr must not turn a usage error into a panic.
        let _ = e.print();
        if e.use_stderr() {
            ExitCode::from(CONFIG_INVALID)
        } else {
            ExitCode::SUCCESS
        }
    })
}

/// Prints an error chain on one line to stderr and picks the exit code.
pub fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if let Some(exit) = err.downcast_ref::<Exit>() {
                eprintln!("headroom: {}", exit.message);
                return ExitCode::from(exit.code);
            }
            eprintln!("headroom: {err:#}");
            ExitCode::FAILURE
        }
    }
}
