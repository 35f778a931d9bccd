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
    /// are never all in memory). Rows stamped after `now` (written while the clock ran ahead,
    /// before it was stepped back) are left out: fed, they would hold the forecaster, which
    /// takes no time at or before its last, until the clock caught up with them.
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
        // The bucket `now` falls in is the latest a row can start at.
        let end = now as i64 + 1;
        // A minute that overlaps the first 10-second bucket is left to the finer rows.
        let coarse = (now - forecast.max_history_s) as i64..fine_from.saturating_sub(59).min(end);
        let mut refill = Refill::new(forecast);
        reader.each_point(metric, coarse, Resolution::OneMinute, |p| refill.feed(p))?;
        reader.each_point(metric, fine_from..end, Resolution::TenSeconds, |p| {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Batch, Rollup, Writer};

    #[test]
    fn rows_stamped_after_now_are_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.db");
        let mut w = Writer::open(&path, 256).unwrap();
        let now = 1_800_000_000.0;
        let row = |ts: i64| Rollup {
            metric: "cpu.busy_cores".into(),
            ts,
            mean: 1.0,
            max: 1.0,
            last: 1.0,
            n: 10,
        };
        // Ten minutes up to now, then an hour written while the clock ran two hours ahead.
        let mut rows: Vec<Rollup> = (0..60).map(|i| row(now as i64 - 600 + i * 10)).collect();
        rows.extend((0..360).map(|i| row(now as i64 + 7200 + i * 10)));
        w.apply(&Batch {
            rollups_10s: rows,
            ..Batch::default()
        })
        .unwrap();
        let reader = Reader::open_with_cache(&path, 64).unwrap();
        let refill =
            Refill::from_store(&reader, "cpu.busy_cores", ForecastConfig::default(), now).unwrap();
        let last = refill.recent().back().unwrap().ts;
        assert_eq!(last, now as i64 - 10, "fed a row after now");
    }
}
