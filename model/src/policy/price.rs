//! What a short sample is priced at as the plan runs, and whether the plan may decide at all.
//!
//! - **The budget is a ceiling.** The price is the budget's own
//!   ([`super::newsvendor::price_of_budget`]) times a surcharge: while the realised shortfall
//!   runs above the budget the surcharge rises, and it falls back as the shortfall falls below.
//! - **The bill has a ceiling too** (`spend_ceiling`). On demand that jumps more often than the
//!   budget allows and without warning (mostly idle, then bursts), meeting the budget means
//!   holding the burst level all the time: several times what target tracking pays, for
//!   shortfalls no forecast foresaw. So while the plan's recent spend runs above the ceiling
//!   times what target tracking would spend on the same demand, target tracking decides (the
//!   policy says so in its reason) and the surcharge stands still: those shortfalls are target
//!   tracking's, not the plan's. Such a group runs short more often than its budget rather than
//!   paying without bound. Spend is compared over [`SPEND_WINDOW_S`] (exponentially weighted),
//!   long enough that capacity bought ahead of a ramp, which target tracking buys only after it,
//!   is not held against the plan, and not before [`SPEND_SEEN_S`] of it was seen.
//!
//! Invariant: the surcharge stays within [0, [`SURCHARGE_MAX`]].

use super::PolicyConfig;

/// How fast the surcharge follows the realised shortfall, per decision.
const SURCHARGE_GAIN: f64 = 0.05;
/// The largest surcharge (natural log): a short sample at most this much dearer than the
/// budget says.
const SURCHARGE_MAX: f64 = 6.9;
/// The time constant of the spend comparison, seconds.
const SPEND_WINDOW_S: f64 = 6.0 * 3600.0;
/// Spend compared over less time than this says too little to act on, seconds.
const SPEND_SEEN_S: f64 = 3600.0;
/// Decision intervals without a decision after which the time between is a gap (demand
/// missing, a stall), taken up as after a restart: not charged at the counts in force before it,
/// which would weigh the ratio of one moment as hours of spend. Four, as the ledger counts a
/// row, and never less than [`GAP_FLOOR_S`].
const GAP_INTERVALS: f64 = 4.0;
/// The shortest gap, seconds, whatever the interval: decisions further apart than configured
/// (a replay of a coarser trace, ticks delayed behind a slow hook) are not gaps.
const GAP_FLOOR_S: f64 = 900.0;

/// The price's running state.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Price {
    /// Natural log of the price over the budget's own.
    surcharge: f64,
    /// Instance-seconds, the plan's and target tracking's, each decayed by
    /// `exp(-age / SPEND_WINDOW_S)`.
    plan_spend: f64,
    tracking_spend: f64,
    /// The counts last recorded, in force until the next record.
    counts: (u32, u32),
    /// Times of the first and the last [`Price::spent`], if any.
    first_t: Option<f64>,
    last_t: f64,
}

impl Price {
    /// The factor on the budget's own price.
    pub(crate) fn factor(&self) -> f64 {
        self.surcharge.exp()
    }

    /// Records counts in force from `t`: the plan's and what target tracking would run, deciding
    /// every `interval_s`. Counts recorded again at the same `t` replace the first (the first
    /// decision after [`Price::resume`]); a `t` before the last is ignored.
    pub(crate) fn spent(&mut self, t: f64, planned: u32, tracked: u32, interval_s: f64) {
        if self.first_t.is_none() {
            self.first_t = Some(t);
            self.last_t = t;
        } else if t < self.last_t {
            return;
        } else if t - self.last_t > (GAP_INTERVALS * interval_s).max(GAP_FLOOR_S) {
            self.resume(t);
        } else if t > self.last_t {
            let dt = t - self.last_t;
            let decay = (-dt / SPEND_WINDOW_S).exp();
            let (p, r) = self.counts;
            self.plan_spend = self.plan_spend * decay + f64::from(p) * dt;
            self.tracking_spend = self.tracking_spend * decay + f64::from(r) * dt;
            self.last_t = t;
        }
        self.counts = (planned, tracked);
    }

    /// The plan's recent spend per instance of target tracking's (1 until an hour is seen).
    pub(crate) fn spend_ratio(&self) -> f64 {
        let seen = self.first_t.map_or(0.0, |f| self.last_t - f);
        if seen >= SPEND_SEEN_S && self.tracking_spend > 0.0 {
            self.plan_spend / self.tracking_spend
        } else {
            1.0
        }
    }

    /// Takes up again at `t` after nobody decided since the last record (a restart): that
    /// time is not counted as spend by either side, it only ages what was, so the ratio of
    /// recent spends stands and weighs less against what comes. Nor is it time seen: spend
    /// compared over less than [`SPEND_SEEN_S`] of decisions stays untrusted however long the
    /// gap. The surcharge, learned from the shortfalls of those same hours, fades with them
    /// toward the budget's own price: kept whole over a restart of seconds, mostly gone after a
    /// day down (a rollback and a later upgrade), when the demand it was learned on is old.
    pub(crate) fn resume(&mut self, t: f64) {
        if let Some(first) = self.first_t.as_mut()
            && t > self.last_t
        {
            let gap = t - self.last_t;
            let decay = (-gap / SPEND_WINDOW_S).exp();
            self.plan_spend *= decay;
            self.tracking_spend *= decay;
            self.surcharge *= decay;
            *first += gap;
            self.last_t = t;
        }
    }

    /// Whether the plan's recent spend is above `ceiling` times target tracking's.
    pub(crate) fn over_ceiling(&self, ceiling: f64) -> bool {
        self.spend_ratio() > ceiling
    }

    /// Moves the surcharge after one judged sample: `short` whether demand found less capacity
    /// ready than the plan had asked for, against `budget`.
    pub(crate) fn judge(&mut self, short: bool, config: &PolicyConfig) {
        if self.over_ceiling(config.spend_ceiling_in_force()) {
            // Target tracking decides meanwhile: its shortfalls are not the plan's.
            return;
        }
        let short = if short { 1.0 } else { 0.0 };
        let step = SURCHARGE_GAIN * (short - config.shortfall_budget.clamp(1e-6, 0.5));
        self.surcharge = (self.surcharge + step).clamp(0.0, SURCHARGE_MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortfall_above_the_budget_raises_the_price_and_below_lets_it_down() {
        let cfg = PolicyConfig::default();
        let mut p = Price::default();
        p.spent(0.0, 2, 2, 1.0);
        for _ in 0..20 {
            p.judge(true, &cfg);
        }
        let raised = p.factor();
        assert!(raised > 2.0, "{raised}");
        for _ in 0..2000 {
            p.judge(false, &cfg);
        }
        assert!((p.factor() - 1.0).abs() < 1e-9, "{}", p.factor());
    }

    #[test]
    fn spending_past_the_ceiling_hands_over_and_freezes_the_price() {
        let cfg = PolicyConfig::default();
        let mut p = Price::default();
        for i in 0..100 {
            // Three instances where target tracking runs two, for well over an hour.
            p.spent(f64::from(i) * 60.0, 3, 2, 60.0);
        }
        assert!(p.over_ceiling(1.4), "{}", p.spend_ratio());
        assert!(!p.over_ceiling(1.6));
        let before = p.factor();
        p.judge(true, &cfg);
        assert_eq!(
            p.factor(),
            before,
            "target tracking's shortfall moved the price"
        );
        // Back to target tracking's spend: within the ceiling again after a while.
        for i in 100..600 {
            p.spent(f64::from(i) * 60.0, 2, 2, 60.0);
        }
        assert!(!p.over_ceiling(1.4), "{}", p.spend_ratio());
        p.judge(true, &cfg);
        assert!(p.factor() > before);
    }

    #[test]
    fn time_nobody_decided_ages_the_spend_without_counting_as_spend() {
        let mut before = Price::default();
        for i in 0..=120 {
            // Three instances where target tracking runs two, for two hours.
            before.spent(f64::from(i) * 60.0, 3, 2, 60.0);
        }
        let back = 7200.0 + 6.0 * 3600.0;
        let mut resumed = before.clone();
        // Six hours down: the ratio stands.
        resumed.resume(back);
        assert!((resumed.spend_ratio() - before.spend_ratio()).abs() < 1e-9);
        // Then even spend for an hour: the aged overspend weighs less than it would without
        // the six hours.
        let mut went_on = before.clone();
        for i in 0..=60 {
            let t = f64::from(i) * 60.0;
            resumed.spent(back + t, 2, 2, 60.0);
            went_on.spent(7200.0 + t, 2, 2, 60.0);
        }
        assert!(
            resumed.spend_ratio() < went_on.spend_ratio(),
            "{} {}",
            resumed.spend_ratio(),
            went_on.spend_ratio()
        );
        // Counted at the counts last in force, the six hours would be two and a half hours
        // of overspend more than the ratio stood at.
        let mut counted = before.clone();
        counted.spent(back, 2, 2, 6.0 * 3600.0);
        assert!(counted.spend_ratio() > 1.45, "{}", counted.spend_ratio());
    }

    #[test]
    fn a_gap_between_decisions_is_taken_up_as_after_a_restart() {
        let mut before = Price::default();
        for i in 0..=120 {
            before.spent(f64::from(i) * 60.0, 2, 2, 60.0);
        }
        // The last decision before the gap: three times target tracking's count.
        before.spent(7260.0, 6, 2, 60.0);
        let back = 7260.0 + 6.0 * 3600.0;
        let mut resumed = before.clone();
        resumed.resume(back);
        resumed.spent(back, 2, 2, 60.0);
        // Six hours without a decision, every minute: a gap, not six hours at three times.
        // (Ten minutes would be none: decisions further apart than configured are no gap.)
        let mut late = before.clone();
        late.spent(7260.0 + 600.0, 2, 2, 60.0);
        assert!(late.spend_ratio() > 1.05, "{}", late.spend_ratio());
        let mut gap = before;
        gap.spent(back, 2, 2, 60.0);
        assert_eq!(gap, resumed);
        assert!(gap.spend_ratio() < 1.1, "{}", gap.spend_ratio());
    }

    #[test]
    fn the_surcharge_fades_with_the_time_nobody_decided() {
        let cfg = PolicyConfig::default();
        let mut learned = Price::default();
        learned.spent(0.0, 2, 2, 1.0);
        for _ in 0..40 {
            learned.judge(true, &cfg);
        }
        let surcharge = learned.factor().ln();
        assert!(surcharge > 1.0, "{surcharge}");
        // A restart of ten seconds keeps it.
        let mut quick = learned.clone();
        quick.resume(10.0);
        assert!((quick.factor().ln() - surcharge).abs() < 1e-3 * surcharge);
        // Six hours down: it weighs e^-1 of what it did.
        let mut later = learned.clone();
        later.resume(SPEND_WINDOW_S);
        assert!((later.factor().ln() - surcharge / std::f64::consts::E).abs() < 1e-9);
        // Two days down: nearly the budget's own price again.
        let mut old = learned;
        old.resume(2.0 * 86_400.0);
        assert!(old.factor() < 1.01, "{}", old.factor());
    }

    #[test]
    fn time_nobody_decided_is_not_time_seen() {
        let mut p = Price::default();
        for i in 0..=10 {
            // Ten minutes at three times target tracking's spend: too little to act on.
            p.spent(f64::from(i) * 60.0, 3, 1, 60.0);
        }
        assert_eq!(p.spend_ratio(), 1.0);
        // An hour down is no hour seen.
        p.resume(600.0 + 3600.0);
        assert_eq!(p.spend_ratio(), 1.0);
        // Ten minutes before and 49 after: not an hour yet; 50 after make it one.
        for i in 1..=49 {
            p.spent(4200.0 + f64::from(i) * 60.0, 3, 1, 60.0);
        }
        assert_eq!(p.spend_ratio(), 1.0, "an hour of decisions is not seen yet");
        p.spent(4200.0 + 3000.0, 3, 1, 60.0);
        assert!(p.spend_ratio() > 2.9, "{}", p.spend_ratio());
    }

    #[test]
    fn an_hour_is_seen_before_spend_is_compared() {
        let mut p = Price::default();
        for i in 0..59 {
            p.spent(f64::from(i) * 60.0, 10, 1, 60.0);
        }
        assert_eq!(p.spend_ratio(), 1.0);
        p.spent(3600.0, 10, 1, 60.0);
        assert!(p.spend_ratio() > 9.0, "{}", p.spend_ratio());
    }
}
