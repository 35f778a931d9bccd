//! Where the agent keeps its database and its control socket, following systemd's conventions.

use std::path::PathBuf;

use anyhow::bail;

fn env_dir(name: &str) -> Option<PathBuf> {
    // systemd may pass several directories separated by ':'; the first is ours.
    let v = std::env::var_os(name)?;
    let first = v
        .to_str()
        .map(|s| s.split(':').next().unwrap_or(s).to_string());
    match first {
        Some(s) if !s.is_empty() => Some(PathBuf::from(s)),
        _ => None,
    }
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn home() -> anyhow::Result<PathBuf> {
    match std::env::var_os("HOME") {
        Some(h) if !h.is_empty() => Ok(PathBuf::from(h)),
        _ => bail!(
            "neither $STATE_DIRECTORY, $XDG_STATE_HOME nor $HOME is set: set agent.state_directory"
        ),
    }
}

/// The state directory: config, `$STATE_DIRECTORY`, `/var/lib/headroom` as root, else
/// `$XDG_STATE_HOME/headroom` or `~/.local/state/headroom`.
pub fn state_dir(configured: &str) -> anyhow::Result<PathBuf> {
    if !configured.is_empty() {
        return Ok(PathBuf::from(configured));
    }
    if let Some(d) = env_dir("STATE_DIRECTORY") {
        return Ok(d);
    }
    if is_root() {
        return Ok(PathBuf::from("/var/lib/headroom"));
    }
    if let Some(d) = env_dir("XDG_STATE_HOME") {
        return Ok(d.join("headroom"));
    }
    Ok(home()?.join(".local/state/headroom"))
}

/// The user's runtime directory for headroom, when there is one.
fn user_runtime_dir() -> Option<PathBuf> {
    env_dir("XDG_RUNTIME_DIR").map(|d| d.join("headroom"))
}

/// The control socket the agent binds: config, `$RUNTIME_DIRECTORY/headroom.sock`,
/// `/run/headroom/headroom.sock` as root, else `$XDG_RUNTIME_DIR/headroom/headroom.sock`, else
/// (a session without a runtime directory) next to the database in the user's state directory.
pub fn agent_socket(configured: &str) -> anyhow::Result<PathBuf> {
    if !configured.is_empty() {
        return Ok(PathBuf::from(configured));
    }
    if let Some(d) = env_dir("RUNTIME_DIRECTORY") {
        return Ok(d.join(SOCKET_NAME));
    }
    if is_root() {
        return Ok(PathBuf::from("/run/headroom").join(SOCKET_NAME));
    }
    match user_runtime_dir() {
        Some(d) => Ok(d.join(SOCKET_NAME)),
        None => Ok(state_dir("")?.join(SOCKET_NAME)),
    }
}

/// File name of the control socket.
pub const SOCKET_NAME: &str = "headroom.sock";

/// Where the CLI looks for the agent, in order: `--socket`/`$HEADROOM_SOCKET` (given),
/// `$RUNTIME_DIRECTORY`, `/run/headroom`, the user's runtime directory, then the user's state
/// directory. The first that exists wins; with none, the first candidate is reported.
pub fn client_socket_candidates(given: Option<PathBuf>) -> Vec<PathBuf> {
    // Read here rather than by the flag parser, which took an empty variable (`HEADROOM_SOCKET=
    // headroom status`) for a flag without its value.
    if let Some(p) = given.or_else(|| {
        std::env::var_os("HEADROOM_SOCKET")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    }) {
        return vec![p];
    }
    let mut out = Vec::new();
    if let Some(d) = env_dir("RUNTIME_DIRECTORY") {
        out.push(d.join(SOCKET_NAME));
    }
    out.push(PathBuf::from("/run/headroom").join(SOCKET_NAME));
    if let Some(d) = user_runtime_dir() {
        out.push(d.join(SOCKET_NAME));
    }
    if !is_root()
        && let Ok(d) = state_dir("")
    {
        out.push(d.join(SOCKET_NAME));
    }
    out
}
