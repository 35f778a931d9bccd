//! `command`: runs a configured program (no shell) with the desired capacity and reason as
//! arguments and environment, killed after a timeout. For Terraform, Ansible or anything else.
//!
//! Environment given to the program: `HEADROOM_ACTION` (`set_capacity` or `replace`),
//! `HEADROOM_GROUP`, `HEADROOM_REASON`, and `HEADROOM_DESIRED`/`HEADROOM_CURRENT` or
//! `HEADROOM_HOST`/`HEADROOM_INSTANCE_ID`. Exit status 0 means applied.

use std::process::Stdio;

use tokio::process::Command as Process;

use super::{Actuate, ActuatorError, Capacity, CommandConfig, duration};

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
        let expand = |a: &String| vars.iter().fold(a.clone(), |s, (k, v)| s.replace(k, v));
        let mut cmd = Process::new(&self.config.program);
        cmd.args(args.iter().map(expand))
            .env("HEADROOM_GROUP", &self.group)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().map_err(|e| {
            ActuatorError::Command(format!("cannot start {}: {e}", self.config.program))
        })?;
        let output = tokio::time::timeout(duration(self.config.timeout), child.wait_with_output())
            .await
            .map_err(|_| {
                ActuatorError::Command(format!(
                    "{} killed after {}",
                    self.config.program, self.config.timeout
                ))
            })?
            .map_err(|e| {
                ActuatorError::Command(format!("waiting for {}: {e}", self.config.program))
            })?;
        if output.status.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: String = stderr
            .chars()
            .rev()
            .take(STDERR_TAIL)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        Err(ActuatorError::Command(format!(
            "{} exited with {}: {}",
            self.config.program,
            output.status,
            tail.trim()
        )))
    }
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
