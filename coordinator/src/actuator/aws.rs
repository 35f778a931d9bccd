//! `aws`: drives an EC2 Auto Scaling group through the official SDK.
//!
//! DescribeAutoScalingGroups reads desired/min/max, SetDesiredCapacity asks for a count clamped
//! to the group's own min/max, SetInstanceHealth marks an unhealthy host's instance so the group
//! replaces it, SetInstanceProtection protects busy instances from scale-in. Credentials come from the standard chain (environment, profile, web identity,
//! container, IMDS); region and endpoint may be set in the config. The HTTPS client is rustls
//! with the ring provider (no aws-lc, so no cmake at build time).

use aws_config::{BehaviorVersion, Region, timeout::TimeoutConfig};
use aws_sdk_autoscaling::Client;
use aws_sdk_autoscaling::types::AutoScalingGroup;
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};

use super::{Actuate, ActuatorError, AwsConfig, Capacity};

/// An Auto Scaling group.
pub struct Aws {
    client: Client,
    name: String,
    /// Whether the group's other scaling policies were looked for (once, at the first read).
    policies_checked: std::sync::atomic::AtomicBool,
}

/// Attempts of one call: throttling is retried with the SDK's adaptive mode, which also slows
/// this client's own calls while the account's rate is exceeded (replicas and groups share it).
const ATTEMPTS: u32 = 5;

impl Aws {
    /// Loads the SDK configuration (standard credential chain) for the group.
    pub async fn new(config: &AwsConfig) -> Aws {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(Provider::Rustls(CryptoMode::Ring))
            .build_https();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http)
            .retry_config(aws_config::retry::RetryConfig::adaptive().with_max_attempts(ATTEMPTS))
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_timeout(config.timeout)
                    .build(),
            );
        if let Some(region) = &config.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(endpoint) = &config.endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        let sdk = loader.load().await;
        Aws {
            client: Client::new(&sdk),
            name: config.auto_scaling_group.clone(),
            policies_checked: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Warns, once, of the group's own scaling policies and scheduled actions: they set the
    /// same DesiredCapacity (headroom sets it without honouring cooldowns, since its own
    /// stabilisation decides when to scale in), so each undoes the other's changes.
    async fn warn_of_other_policies(&self) {
        use std::sync::atomic::Ordering;
        if self.policies_checked.swap(true, Ordering::SeqCst) {
            return;
        }
        let policies = self
            .client
            .describe_policies()
            .auto_scaling_group_name(&self.name)
            .send()
            .await
            .map_err(err);
        let scheduled = self
            .client
            .describe_scheduled_actions()
            .auto_scaling_group_name(&self.name)
            .send()
            .await
            .map_err(err);
        let (policies, scheduled) = match (policies, scheduled) {
            (Ok(p), Ok(s)) => (p, s),
            (Err(e), _) | (_, Err(e)) => {
                tracing::info!(asg = %self.name, "aws: cannot list the group's other scaling policies ({e}); grant autoscaling:DescribePolicies and autoscaling:DescribeScheduledActions to be warned of those that would fight headroom");
                return;
            }
        };
        let mut names: Vec<String> = policies
            .scaling_policies()
            .iter()
            .filter(|p| p.enabled().unwrap_or(true))
            .filter_map(|p| p.policy_name().map(|n| format!("policy {n}")))
            .collect();
        names.extend(
            scheduled
                .scheduled_update_group_actions()
                .iter()
                .filter_map(|a| {
                    a.scheduled_action_name()
                        .map(|n| format!("scheduled action {n}"))
                }),
        );
        if !names.is_empty() {
            tracing::warn!(asg = %self.name, others = %names.join(", "), "aws: the group is also scaled by its own policies: they and headroom set the same DesiredCapacity and undo each other's changes; remove them (or use a schedule entry in headroom)");
        }
    }
}

impl Aws {
    /// The group as DescribeAutoScalingGroups has it.
    async fn describe(&self) -> Result<AutoScalingGroup, ActuatorError> {
        let out = self
            .client
            .describe_auto_scaling_groups()
            .auto_scaling_group_names(&self.name)
            .send()
            .await
            .map_err(err)?;
        let group = out
            .auto_scaling_groups
            .unwrap_or_default()
            .into_iter()
            .find(|g| g.auto_scaling_group_name() == Some(self.name.as_str()))
            .ok_or_else(|| {
                ActuatorError::Aws(format!("auto scaling group {:?} not found", self.name))
            })?;
        match sized_in_other_units(&group) {
            Some(why) => Err(ActuatorError::Unsupported(format!(
                "auto scaling group {:?} {why}; headroom counts instances, so it neither reads \
                 nor sets this group's capacity (use DesiredCapacityType \"units\" without \
                 instance weights)",
                self.name
            ))),
            None => Ok(group),
        }
    }
}

/// Why the group's desired, min and max sizes are not instance counts, if they are not: sized
/// in vCPUs or MiB (`DesiredCapacityType`), or in units of instance weights. Read as counts,
/// 160 vCPUs would be 160 instances, and setting 20 would ask for 20 vCPUs: a scale-in no plan
/// meant.
fn sized_in_other_units(group: &AutoScalingGroup) -> Option<String> {
    if let Some(kind) = group.desired_capacity_type()
        && kind != "units"
    {
        return Some(format!("sizes its capacity in {kind}"));
    }
    let weighted = group
        .mixed_instances_policy()
        .and_then(|p| p.launch_template())
        .into_iter()
        .flat_map(|t| t.overrides())
        .filter_map(|o| o.weighted_capacity())
        .find(|w| w.trim() != "1")?;
    Some(format!(
        "weighs its instances (WeightedCapacity {weighted})"
    ))
}

impl Aws {
    /// Sets the group's MaxSize (`max_breach = "raise"`: raised above the configured max for a
    /// plan that needs it, put back after).
    pub async fn set_max(&self, max: u32, reason: &str) -> Result<(), ActuatorError> {
        let n = i32::try_from(max).unwrap_or(i32::MAX);
        self.client
            .update_auto_scaling_group()
            .auto_scaling_group_name(&self.name)
            .max_size(n)
            .send()
            .await
            .map_err(err)?;
        tracing::info!(asg = %self.name, max, reason, "aws: set MaxSize");
        Ok(())
    }
}

impl Aws {
    /// The group's instances that SetInstanceProtection accepts (InService, EnteringStandby,
    /// Standby: one in another state, such as Terminating or Pending:Wait, fails the whole
    /// call), each with whether it is protected from scale-in now.
    pub async fn members(&self) -> Result<Vec<(String, bool)>, ActuatorError> {
        use aws_sdk_autoscaling::types::LifecycleState;
        let group = self.describe().await?;
        Ok(group
            .instances()
            .iter()
            .filter(|i| {
                matches!(
                    i.lifecycle_state(),
                    Some(
                        LifecycleState::InService
                            | LifecycleState::EnteringStandby
                            | LifecycleState::Standby
                    )
                )
            })
            .filter_map(|i| {
                let id = i.instance_id()?.to_string();
                Some((id, i.protected_from_scale_in().unwrap_or(false)))
            })
            .collect())
    }

    /// Sets or clears the scale-in protection of `ids` (at most 50, all of this group's).
    pub async fn set_protection(&self, ids: &[String], protect: bool) -> Result<(), ActuatorError> {
        self.client
            .set_instance_protection()
            .auto_scaling_group_name(&self.name)
            .set_instance_ids(Some(ids.to_vec()))
            .protected_from_scale_in(protect)
            .send()
            .await
            .map_err(err)?;
        tracing::info!(asg = %self.name, instances = ?ids, protect, "aws: set scale-in protection");
        Ok(())
    }
}

fn err(e: impl std::error::Error) -> ActuatorError {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    ActuatorError::Aws(msg)
}

fn count(v: Option<i32>) -> Option<u32> {
    v.and_then(|n| u32::try_from(n).ok())
}

impl Actuate for Aws {
    async fn current(&self) -> Result<Option<Capacity>, ActuatorError> {
        let group = self.describe().await?;
        self.warn_of_other_policies().await;
        Ok(count(group.desired_capacity()).map(|desired| Capacity {
            desired,
            min: count(group.min_size()),
            max: count(group.max_size()),
        }))
    }

    async fn set_capacity(
        &self,
        desired: u32,
        _current: u32,
        reason: &str,
    ) -> Result<u32, ActuatorError> {
        let bounds = self.current().await?;
        let min = bounds.and_then(|b| b.min).unwrap_or(0);
        let max = bounds.and_then(|b| b.max).unwrap_or(u32::MAX).max(min);
        let applied = desired.clamp(min, max);
        let n = i32::try_from(applied).unwrap_or(i32::MAX);
        self.client
            .set_desired_capacity()
            .auto_scaling_group_name(&self.name)
            .desired_capacity(n)
            .honor_cooldown(false)
            .send()
            .await
            .map_err(err)?;
        tracing::info!(asg = %self.name, desired, applied, reason, "aws: set desired capacity");
        Ok(applied)
    }

    async fn replace(
        &self,
        host: &str,
        instance_id: Option<&str>,
        reason: &str,
    ) -> Result<String, ActuatorError> {
        let Some(id) = instance_id else {
            return Err(ActuatorError::Unsupported(format!(
                "host {host} sent no instance_id"
            )));
        };
        // The id comes from the host's signal: only an instance of this group is marked, so a
        // host holding a token cannot have another group's (or any account's) instance replaced.
        let group = self.describe().await?;
        if !group
            .instances()
            .iter()
            .any(|i| i.instance_id() == Some(id))
        {
            return Err(ActuatorError::Unsupported(format!(
                "instance {id} of host {host} is not in auto scaling group {:?}; not marked",
                self.name
            )));
        }
        self.client
            .set_instance_health()
            .instance_id(id)
            .health_status("Unhealthy")
            .should_respect_grace_period(true)
            .send()
            .await
            .map_err(err)?;
        tracing::info!(asg = %self.name, host, instance_id = id, reason, "aws: marked instance unhealthy");
        Ok(format!("instance {id} marked Unhealthy"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_autoscaling::types::{
        LaunchTemplate, LaunchTemplateOverrides, MixedInstancesPolicy,
    };

    fn weighted(weights: &[&str]) -> AutoScalingGroup {
        let mut template = LaunchTemplate::builder();
        for w in weights {
            template = template.overrides(
                LaunchTemplateOverrides::builder()
                    .weighted_capacity(*w)
                    .build(),
            );
        }
        AutoScalingGroup::builder()
            .mixed_instances_policy(
                MixedInstancesPolicy::builder()
                    .launch_template(template.build())
                    .build(),
            )
            .build()
    }

    /// Only a group sized in instances is read and set: not one sized in vCPUs, memory or
    /// instance weights.
    #[test]
    fn only_a_group_sized_in_instances_is_driven() {
        assert_eq!(
            sized_in_other_units(&AutoScalingGroup::builder().build()),
            None
        );
        let units = AutoScalingGroup::builder()
            .desired_capacity_type("units")
            .build();
        assert_eq!(sized_in_other_units(&units), None);
        let vcpu = AutoScalingGroup::builder()
            .desired_capacity_type("vcpu")
            .build();
        assert_eq!(
            sized_in_other_units(&vcpu).as_deref(),
            Some("sizes its capacity in vcpu")
        );
        assert_eq!(sized_in_other_units(&weighted(&["1", "1"])), None);
        assert_eq!(
            sized_in_other_units(&weighted(&["1", "4"])).as_deref(),
            Some("weighs its instances (WeightedCapacity 4)")
        );
    }
}
