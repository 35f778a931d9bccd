//! The forecaster and the chart's recent points, refilled with stored history before the
//! pipeline starts, so a restart does not send the model back to cold start. The same refill
//! answers `headroom forecast --metric OTHER`. ("Warm-up" means one thing in headroom: the time
//! a new instance takes to serve.)

use std::collections::VecDeque;

use headroom_model::{ForecastConfig, Forecaster};

use super::snapshot::RECENT_POINTS;
use crate::store::{Point, Reader, Resolution};

/// The forecaster and the chart's recent points, fed stored history (oldest first) before the
/// pipeline starts, so a restart does not send the model back to cold start.
pub struct Refill {
    pub(super) forecaster: Forecaster,
    pub(super) recent: VecDeque<Point>,
}

impl Refill {
    /// Nothing seen yet.
    pub fn new(forecast: ForecastConfig) -> Refill {
        Refill {
            forecaster: Forecaster::new(forecast),
            recent: VecDeque::with_capacity(RECENT_POINTS + 1),
        }
    }

    /// Feeds the next stored point of the demand metric.
    pub fn feed(&mut self, p: Point) {
        self.forecaster.observe(p.ts as f64, p.mean);
        if self.recent.len() == RECENT_POINTS {
            self.recent.pop_front();
        }
        self.recent.push_back(p);
    }

    /// Refilled from `metric`'s stored history as far back as the model keeps: 1-minute
    /// rollups, then the 10-second ones from where they start, streamed (two weeks of rows
    /// are never all in memory).
    pub fn from_store(
        reader: &Reader,
        metric: &str,
        forecast: ForecastConfig,
        now: f64,
    ) -> anyhow::Result<Refill> {
        let day_ago = (now - 86_400.0) as i64;
        let fine_from = reader
            .first_ts(metric, day_ago, Resolution::TenSeconds)?
            .unwrap_or(i64::MAX);
        // A minute that overlaps the first 10-second bucket is left to the finer rows.
        let coarse = (now - forecast.max_history_s) as i64..fine_from.saturating_sub(59);
        let mut refill = Refill::new(forecast);
        reader.each_point(metric, coarse, Resolution::OneMinute, |p| refill.feed(p))?;
        reader.each_point(metric, fine_from..i64::MAX, Resolution::TenSeconds, |p| {
            refill.feed(p)
        })?;
        Ok(refill)
    }

    /// The last points fed, oldest first (up to an hour of 10-second rollups).
    pub fn recent(&self) -> &VecDeque<Point> {
        &self.recent
    }

    /// The forecaster, refilled.
    pub fn forecaster(&mut self) -> &mut Forecaster {
        &mut self.forecaster
    }
}
