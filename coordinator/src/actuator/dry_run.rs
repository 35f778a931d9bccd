//! `dry-run`: logs what would be done; the "actual" capacity is the last one it was asked for.

use std::sync::Mutex;

use super::{Actuate, ActuatorError, Capacity};

/// Logs only.
pub struct DryRun {
    group: String,
    last: Mutex<Option<u32>>,
}

impl DryRun {
    /// A dry-run actuator for `group`.
    pub fn new(group: &str) -> DryRun {
        DryRun {
            group: group.to_string(),
            last: Mutex::new(None),
        }
    }
}

impl Actuate for DryRun {
    async fn current(&self) -> Result<Option<Capacity>, ActuatorError> {
        let last = self.last.lock().map(|g| *g).unwrap_or(None);
        Ok(last.map(Capacity::unbounded))
    }

    async fn set_capacity(
        &self,
        desired: u32,
        current: u32,
        reason: &str,
    ) -> Result<u32, ActuatorError> {
        tracing::info!(group = %self.group, current, desired, reason, "dry-run: would set capacity");
        if let Ok(mut last) = self.last.lock() {
            *last = Some(desired);
        }
        Ok(desired)
    }

    async fn replace(
        &self,
        host: &str,
        instance_id: Option<&str>,
        reason: &str,
    ) -> Result<String, ActuatorError> {
        tracing::info!(group = %self.group, host, instance_id, reason, "dry-run: would replace host");
        Ok("dry-run".into())
    }
}
