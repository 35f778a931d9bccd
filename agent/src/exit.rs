//! Exit codes and the one-line error report at the binary's edge.

use std::process::ExitCode;

/// An error that maps to a specific exit code (sysexits.h where one fits).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Exit {
    pub code: u8,
    pub message: String,
}

/// Invalid configuration (EX_CONFIG is 78, but operators script on 64 = EX_USAGE for bad input).
pub const CONFIG_INVALID: u8 = 64;
/// The agent is not running / not reachable (EX_UNAVAILABLE).
pub const UNAVAILABLE: u8 = 69;

impl Exit {
    /// An error with an exit code, ready for `?` (hence not `Self`).
    #[allow(clippy::new_ret_no_self)]
    pub fn new(code: u8, message: impl Into<String>) -> anyhow::Error {
        anyhow::Error::new(Exit {
            code,
            message: message.into(),
        })
    }
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
