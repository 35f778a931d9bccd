//! Faults the failover tests inject into a running coordinator, each off unless its variable
//! is set in the coordinator's environment. They widen a window the real world opens at random
//! (a VM paused at the wrong instruction) to one a test can aim at.
//!
//! - `HEADROOM_FAULT_STOP_AFTER_FENCE=1`: after fencing lets an actuation through, and before
//!   the last deadline check and the call, the process stops itself (SIGSTOP), as a paused VM;
//!   whoever sends SIGCONT decides how long the pause lasted.
//! - `HEADROOM_FAULT_STOP_AFTER_RAISE=1`: after an actuation raised the scaler's maximum
//!   (`max_breach = "raise"`) and before it sets the count, the process stops itself the same
//!   way: a first call of one actuation that outlasted the lease.

use std::sync::OnceLock;

/// Stops the process here when `HEADROOM_FAULT_STOP_AFTER_FENCE=1`.
pub fn stop_after_fence() {
    static ON: OnceLock<bool> = OnceLock::new();
    stop_if(
        &ON,
        "HEADROOM_FAULT_STOP_AFTER_FENCE",
        "between the lease check and the actuation",
    );
}

/// Stops the process here when `HEADROOM_FAULT_STOP_AFTER_RAISE=1`.
pub fn stop_after_raise() {
    static ON: OnceLock<bool> = OnceLock::new();
    stop_if(
        &ON,
        "HEADROOM_FAULT_STOP_AFTER_RAISE",
        "between raising the maximum and setting the count",
    );
}

/// Stops the process (SIGSTOP) when the variable `var` is `1` (read once, into `on`).
fn stop_if(on: &OnceLock<bool>, var: &str, place: &str) {
    let on = *on.get_or_init(|| std::env::var(var).is_ok_and(|v| v == "1"));
    if on {
        tracing::warn!("fault injected: stopping {place}");
        if let Err(e) =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::STOP)
        {
            tracing::warn!("fault injection: SIGSTOP failed: {e}");
        }
        // A signal to the process may stop another thread first: this one stops at its next
        // system call at the latest, this sleep, and not later in the code under test.
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}
