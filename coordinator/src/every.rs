//! A cadence on the wall clock: a task due once per interval, for the decision loop's
//! periodic passes (looking for late signals, scale-in protection).
//!
//! A clock stepped back makes the task due at once rather than holding it back by the step.

/// A task due once every `every_s` seconds.
#[derive(Debug, Clone)]
pub struct Every {
    every_s: f64,
    /// When it was last due, unix seconds.
    last: f64,
}

impl Every {
    /// Due at the first look, then every `every_s` seconds.
    pub fn new(every_s: f64) -> Every {
        Every {
            every_s,
            last: f64::NEG_INFINITY,
        }
    }

    /// Whether the task is due at `now`; if so, the next is `every_s` later.
    pub fn due(&mut self, now: f64) -> bool {
        if now - self.last >= self.every_s || now < self.last {
            self.last = now;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_first_then_once_per_interval_and_at_once_after_a_step_back() {
        let mut e = Every::new(30.0);
        assert!(e.due(100.0));
        assert!(!e.due(129.0));
        assert!(e.due(130.0));
        assert!(e.due(50.0), "the clock stepped back");
        assert!(!e.due(60.0));
    }
}
