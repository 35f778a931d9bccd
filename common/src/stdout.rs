//! What either binary's CLI prints goes out as a Unix filter's output does: a reader that
//! closes the pipe early (`headroom decisions | head`, `headroom groups | head`) ends the
//! command quietly. `print!` would panic there, exit 101 with a backtrace, for what is an
//! ordinary way to read a long answer.
//!
//! Commands build their text and hand it over whole: one write, and one place that knows what
//! a closed pipe means.

use std::io::{ErrorKind, Write};

use anyhow::Context;

/// Writes `text` to standard output and flushes it; a closed pipe is not an error.
pub fn print(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let wrote = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    quiet_when_closed(wrote).context("writing standard output")?;
    Ok(())
}

/// A write's result, with a pipe its reader closed as `Ok(false)`: the reader wanted no more.
pub fn quiet_when_closed(result: std::io::Result<()>) -> std::io::Result<bool> {
    match result {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e),
    }
}
