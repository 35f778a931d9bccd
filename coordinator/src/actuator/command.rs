//! `command`: runs a configured program (no shell) with the desired capacity and reason as
//! arguments and environment, in its own process group, killed whole after a timeout or when
//! the call is abandoned (the lease's deadline came, the coordinator is stopping). For
//! Terraform, Ansible or anything else.
//!
//! Environment given to the program: `HEADROOM_ACTION` (`set_capacity` or `replace`),
//! `HEADROOM_GROUP`, `HEADROOM_REASON`, and `HEADROOM_DESIRED`/`HEADROOM_CURRENT` or
//! `HEADROOM_HOST`/`HEADROOM_INSTANCE_ID`. Exit status 0 means applied.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command as Process;

use super::{Actuate, ActuatorError, Capacity, CommandConfig};

/// Longest part of the program's stderr kept in an error, bytes.
const STDERR_TAIL: usize = 512;

/// Runs a program per actuation.
pub struct Command {
    group: String,
    config: CommandConfig,
}

impl Command {
    /// A command actuator for `group`.
    pub fn new(group: &str, config: CommandConfig) -> Command {
        Command {
            group: group.to_string(),
            config,
        }
    }

    async fn run(
        &self,
        args: &[String],
        vars: &[(&str, &str)],
        env: &[(&str, String)],
    ) -> Result<(), ActuatorError> {
        let expand = |a: &String| expand(a, vars);
        let program = &self.config.program;
        let mut cmd = Process::new(program);
        cmd.args(args.iter().map(expand))
            .env("HEADROOM_GROUP", &self.group)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            // Its own process group: a timeout kills what it started too.
            .process_group(0)
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        // "Text file busy": the hook was just written and a process forked meanwhile (by this
        // one's other threads, or a deployment writing it) still holds it open for writing
        // until that process execs, a matter of milliseconds. Tried again briefly, not failed.
        let mut tries = 0;
        let mut child = loop {
            match cmd.spawn() {
                Err(e)
                    if e.raw_os_error() == Some(rustix::io::Errno::TXTBSY.raw_os_error())
                        && tries < 5 =>
                {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(20 * tries)).await;
                }
                spawned => {
                    break spawned.map_err(|e| {
                        ActuatorError::Command(format!("cannot start {program}: {e}"))
                    })?;
                }
            }
        };
        let mut group = GroupKill(
            child
                .id()
                .and_then(|id| rustix::process::Pid::from_raw(id as i32)),
        );
        // Aborted when dropped: a process the hook left running may hold its stderr open.
        let stderr = child
            .stderr
            .take()
            .map(|e| AbortOnDrop(tokio::spawn(stderr_tail(e))));
        let status = match tokio::time::timeout(self.config.timeout, child.wait()).await {
            Ok(status) => {
                // It ended: what it left running is its own business (and its group id may be
                // reused once it is reaped).
                group.0 = None;
                status.map_err(|e| ActuatorError::Command(format!("waiting for {program}: {e}")))?
            }
            Err(_) => {
                drop(group);
                let _ = child.wait().await;
                return Err(ActuatorError::Command(format!(
                    "{program} killed after {}",
                    headroom_common::duration::format(self.config.timeout)
                )));
            }
        };
        if status.success() {
            return Ok(());
        }
        // A process it left running may hold stderr open: what arrived shortly after is enough.
        let tail = match stderr {
            Some(mut task) => tokio::time::timeout(Duration::from_millis(200), &mut task.0)
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default(),
            None => String::new(),
        };
        Err(ActuatorError::Command(format!(
            "{program} exited with {status}: {}",
            tail.trim()
        )))
    }
}

/// Whether `program` names an executable file for this user here: a path as given, a bare name
/// on `PATH`, as the hook would be run. `--check` says when it does not (a note, not a refusal:
/// a configuration may be checked on another machine than the one it runs on).
pub fn program_found(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let runnable = |p: &std::path::Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        return runnable(std::path::Path::new(program));
    }
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| runnable(&dir.join(program))))
}

/// `arg` with each placeholder of `vars` (`{name}`) replaced, in one pass: a value is never
/// read again for placeholders (a host id that spells `{reason}` stays as it is).
fn expand(arg: &str, vars: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(arg.len());
    let mut rest = arg;
    'scan: while !rest.is_empty() {
        for (k, v) in vars {
            if let Some(after) = rest.strip_prefix(k) {
                out.push_str(v);
                rest = after;
                continue 'scan;
            }
        }
        let mut chars = rest.chars();
        if let Some(c) = chars.next() {
            out.push(c);
        }
        rest = chars.as_str();
    }
    out
}

/// A task aborted when dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The hook's process group while the hook runs: killed whole when dropped, whether at the
/// timeout or because the call was abandoned (the lease's deadline came, the coordinator is
/// stopping), so what the hook started does not go on acting for a replica that no longer
/// leads. `kill_on_drop` alone would kill the hook and leave its children running.
struct GroupKill(Option<rustix::process::Pid>);

impl Drop for GroupKill {
    fn drop(&mut self) {
        if let Some(pg) = self.0.take() {
            let _ = rustix::process::kill_process_group(pg, rustix::process::Signal::KILL);
        }
    }
}

/// The last [`STDERR_TAIL`] bytes of a program's stderr, read to its end.
async fn stderr_tail(mut stderr: tokio::process::ChildStderr) -> String {
    use tokio::io::AsyncReadExt;
    let mut tail: Vec<u8> = Vec::with_capacity(STDERR_TAIL);
    let mut buf = [0u8; 4096];
    while let Ok(n) = stderr.read(&mut buf).await {
        if n == 0 {
            break;
        }
        tail.extend_from_slice(&buf[..n]);
        if tail.len() > STDERR_TAIL {
            tail.drain(..tail.len() - STDERR_TAIL);
        }
    }
    String::from_utf8_lossy(&tail).into_owned()
}

impl Actuate for Command {
    async fn current(&self) -> Result<Option<Capacity>, ActuatorError> {
        Ok(None)
    }

    async fn set_capacity(
        &self,
        desired: u32,
        current: u32,
        reason: &str,
    ) -> Result<u32, ActuatorError> {
        let (d, c) = (desired.to_string(), current.to_string());
        let vars = [
            ("{group}", self.group.as_str()),
            ("{desired}", &d),
            ("{current}", &c),
            ("{reason}", reason),
        ];
        let env = [
            ("HEADROOM_ACTION", "set_capacity".to_string()),
            ("HEADROOM_DESIRED", d.clone()),
            ("HEADROOM_CURRENT", c.clone()),
            ("HEADROOM_REASON", reason.to_string()),
        ];
        self.run(&self.config.args, &vars, &env).await?;
        Ok(desired)
    }

    async fn replace(
        &self,
        host: &str,
        instance_id: Option<&str>,
        reason: &str,
    ) -> Result<String, ActuatorError> {
        let Some(args) = &self.config.replace_args else {
            return Err(ActuatorError::Unsupported(
                "command actuator has no replace_args".into(),
            ));
        };
        let id = instance_id.unwrap_or("");
        let vars = [
            ("{group}", self.group.as_str()),
            ("{host}", host),
            ("{instance_id}", id),
            ("{reason}", reason),
        ];
        let env = [
            ("HEADROOM_ACTION", "replace".to_string()),
            ("HEADROOM_HOST", host.to_string()),
            ("HEADROOM_INSTANCE_ID", id.to_string()),
            ("HEADROOM_REASON", reason.to_string()),
        ];
        self.run(args, &vars, &env).await?;
        Ok(format!("{} ran", self.config.program))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_replaced_in_one_pass() {
        let vars = [("{host}", "web-{reason}"), ("{reason}", "scale out")];
        assert_eq!(
            expand("--host={host} --why={reason} {x}", &vars),
            "--host=web-{reason} --why=scale out {x}"
        );
        assert_eq!(expand("é{host}ü", &vars), "éweb-{reason}ü");
    }

    fn actuator(dir: &std::path::Path, script: &str, timeout_s: f64) -> Command {
        use std::os::unix::fs::PermissionsExt;
        let program = dir.join("hook");
        std::fs::write(&program, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
        Command::new(
            "g",
            CommandConfig {
                program: program.display().to_string(),
                args: Vec::new(),
                replace_args: None,
                timeout: Duration::from_secs_f64(timeout_s),
            },
        )
    }

    /// Whether the process is running (a killed one may stay a zombie until init reaps it).
    fn alive(pid_file: &std::path::Path) -> bool {
        let pid = std::fs::read_to_string(pid_file).unwrap();
        std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).is_ok_and(|stat| {
            let state = stat.rsplit(')').next().unwrap_or("").trim_start();
            !state.starts_with('Z') && !state.starts_with('X')
        })
    }

    #[tokio::test]
    async fn a_hook_that_leaves_a_process_behind_succeeds_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let a = actuator(dir.path(), "sleep 30 &\necho $! > \"$0.pid\"\nexit 0", 5.0);
        let started = std::time::Instant::now();
        assert_eq!(a.set_capacity(3, 2, "r").await.unwrap(), 3);
        assert!(started.elapsed() < Duration::from_secs(3));
        let pid = dir.path().join("hook.pid");
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_raw(
                std::fs::read_to_string(&pid)
                    .unwrap()
                    .trim()
                    .parse()
                    .unwrap(),
            )
            .unwrap(),
            rustix::process::Signal::KILL,
        );
    }

    #[tokio::test]
    async fn a_timeout_kills_the_hook_and_what_it_started() {
        let dir = tempfile::tempdir().unwrap();
        let a = actuator(dir.path(), "sleep 30 &\necho $! > \"$0.pid\"\nwait", 0.5);
        let started = std::time::Instant::now();
        let e = a.set_capacity(3, 2, "r").await.unwrap_err().to_string();
        assert!(e.contains("killed after"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(5));
        let pid = dir.path().join("hook.pid");
        let gone = (0..50).any(|_| {
            std::thread::sleep(Duration::from_millis(20));
            !alive(&pid)
        });
        assert!(gone, "the hook's child outlived the timeout");
    }

    /// A call abandoned mid-run (its future dropped, as at the lease's deadline) kills the
    /// hook's whole process group, not just the hook.
    #[tokio::test]
    async fn an_abandoned_call_kills_the_hook_and_what_it_started() {
        let dir = tempfile::tempdir().unwrap();
        let a = actuator(dir.path(), "sleep 30 &\necho $! > \"$0.pid\"\nwait", 30.0);
        let pid = dir.path().join("hook.pid");
        let call = a.set_capacity(3, 2, "r");
        let abandoned = tokio::time::timeout(Duration::from_millis(500), call).await;
        assert!(abandoned.is_err(), "the hook ended by itself");
        assert!(pid.exists(), "the hook had not started its child");
        let gone = (0..50).any(|_| {
            std::thread::sleep(Duration::from_millis(20));
            !alive(&pid)
        });
        assert!(gone, "the hook's child outlived the abandoned call");
    }

    #[tokio::test]
    async fn a_failure_reports_the_end_of_stderr() {
        let dir = tempfile::tempdir().unwrap();
        let a = actuator(
            dir.path(),
            "echo first >&2\necho last words >&2\nexit 3",
            5.0,
        );
        let e = a.set_capacity(3, 2, "r").await.unwrap_err().to_string();
        assert!(
            e.contains("exit status: 3") && e.contains("last words"),
            "{e}"
        );
    }
    #[test]
    fn a_program_is_found_as_the_hook_would_be_run() {
        assert!(program_found("/bin/sh"));
        assert!(program_found("sh"), "a bare name is looked up on PATH");
        assert!(!program_found("/nonexistent/hook"));
        assert!(!program_found("no-such-program-anywhere"));
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("not-executable");
        std::fs::write(&plain, "#!/bin/sh\n").unwrap();
        assert!(!program_found(plain.to_str().unwrap()));
        assert!(!program_found(dir.path().to_str().unwrap()), "a directory");
    }
}
