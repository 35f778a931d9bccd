//! The group's `max` and `max_breach`: with `"hold"` the plan never asks for more than `max`;
//! with `"raise"` it may, and the scaler's own maximum is raised with the count (plus a
//! buffer), then put back to `max` by the scale-in that fits under it.
//!
//! With `"raise"` headroom owns the scaler's maximum: `max` while the count fits under it.
//! A raise left in place (a put-back that failed, was refused at the lease's deadline, or never
//! ran because the coordinator stopped between the two calls) is found from the scaler's own
//! maximum, read every decision, and put back then; a put-back is never only a note.

use crate::config::{GroupConfig, MaxBreach};

/// The most instances the plan may ask for: `max`, or with `max_breach = "raise"` no bound of
/// the group's own (the scaler's maximum is raised to fit).
pub(super) fn most(c: &GroupConfig) -> u32 {
    match c.max_breach {
        MaxBreach::Hold => c.max,
        MaxBreach::Raise => c.max.max(RAISE_LIMIT),
    }
}

/// The largest count `max_breach = "raise"` asks for (a bound against nonsense, not a policy).
const RAISE_LIMIT: u32 = 100_000;

/// With `max_breach = "raise"`, the scaler's maximum to set with a change from `from` to `to`:
/// the count plus the buffer while above `max`, `max` again when the change brings it under.
pub(super) fn breach_max(c: &GroupConfig, from: u32, to: u32) -> Option<u32> {
    if c.max_breach != MaxBreach::Raise {
        return None;
    }
    if to > c.max {
        let buffered = (f64::from(to) * (1.0 + c.max_breach_buffer)).ceil();
        Some((buffered.min(f64::from(RAISE_LIMIT)) as u32).max(to))
    } else if from > c.max {
        Some(c.max)
    } else {
        None
    }
}

/// With `max_breach = "raise"`, the scaler's maximum when it is left raised: above `max` while
/// the count (`actual`) fits under `max`.
pub(super) fn left_raised(c: &GroupConfig, actual: u32, engine_max: Option<u32>) -> Option<u32> {
    if c.max_breach != MaxBreach::Raise || actual > c.max {
        return None;
    }
    engine_max.filter(|&m| m > c.max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raised_maximum_follows_the_plan_above_max_and_is_put_back_under_it() {
        let hold = GroupConfig {
            max: 10,
            ..GroupConfig::default()
        };
        assert_eq!(breach_max(&hold, 8, 14), None, "hold never sets a maximum");
        let raise = GroupConfig {
            max_breach: MaxBreach::Raise,
            max_breach_buffer: 0.1,
            ..hold.clone()
        };
        assert_eq!(most(&hold), 10);
        assert_eq!(most(&raise), RAISE_LIMIT);
        assert_eq!(breach_max(&raise, 8, 14), Some(16), "14 x 1.1, rounded up");
        assert_eq!(
            breach_max(&raise, 14, 12),
            Some(14),
            "still above max: follows the plan"
        );
        assert_eq!(
            breach_max(&raise, 12, 9),
            Some(10),
            "back under max: max again"
        );
        assert_eq!(breach_max(&raise, 9, 7), None, "nothing raised to put back");
        // The scaler's own maximum, read each decision: left raised under the count's `max`.
        assert_eq!(left_raised(&raise, 9, Some(16)), Some(16));
        assert_eq!(left_raised(&raise, 9, Some(10)), None, "at max");
        assert_eq!(left_raised(&raise, 12, Some(16)), None, "still in a breach");
        assert_eq!(left_raised(&raise, 9, None), None, "not read");
        assert_eq!(
            left_raised(&hold, 9, Some(16)),
            None,
            "hold owns no maximum"
        );
    }
}
